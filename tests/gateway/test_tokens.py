"""API tokens: stored only as peppered hashes; roles bound scopes; expiry parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bastion.errors import ConfigError, UnknownPluginError
from bastion.gateway.db import open_database, tokens
from bastion.gateway.settings import GatewaySettings
from bastion.gateway.tokens import TokenStore, parse_duration, token_id_of


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    db = open_database(f"sqlite:///{tmp_path}/t.db")
    return TokenStore(db, SecretStr("pepper-1"), GatewaySettings().roles)


def test_token_is_not_stored_and_verifies(store: TokenStore, tmp_path: Path) -> None:
    token, info = store.create(name="ci", role="client")
    assert token_id_of(token) == info.id and info.scopes == ("predict",)
    raw = (tmp_path / "t.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("t.db-*"))
    assert token.encode() not in raw and token.split("_")[-1].encode() not in raw
    assert store.verify(token) == info


def test_wrong_secret_or_pepper_fails(store: TokenStore, tmp_path: Path) -> None:
    token, _ = store.create(name="ci", role="client")
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    other = TokenStore(open_database(f"sqlite:///{tmp_path}/t.db"), SecretStr("pepper-2"),
                       GatewaySettings().roles)
    assert other.verify(token) is None  # a database without its pepper is useless


def test_digest_is_hmac_of_the_token(store: TokenStore) -> None:
    import hashlib
    import hmac

    token, info = store.create(name="x", role="admin")
    with store._db.engine.connect() as conn:
        digest = conn.execute(select(tokens.c.digest).where(tokens.c.id == info.id)).scalar()
    assert digest == hmac.new(b"pepper-1", token.encode(), hashlib.sha256).hexdigest()


def test_roles_bound_scopes(store: TokenStore) -> None:
    with pytest.raises(ConfigError, match="may not hold"):
        store.create(name="x", role="client", scopes=("admin",))
    with pytest.raises(UnknownPluginError, match="unknown role"):
        store.create(name="x", role="root")


def test_revoke_and_list(store: TokenStore) -> None:
    _, a = store.create(name="a", role="client")
    store.create(name="b", role="analyst", ttl_s=60)
    assert store.revoke(a.id) and not store.revoke("0" * 16)
    listed = {t.name: t for t in store.list()}
    assert listed["a"].revoked and not listed["b"].revoked and listed["b"].expires


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200),
                                               ("30d", 2_592_000)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0d", "1w", "d", "-1h", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["bst_xyz_abc", "bst_0123456789abcdef", "tok_0123456789abcdef_x",
                                  "bst_0123456789abcdeg_x"])
def test_not_token_ids(text: str) -> None:
    assert token_id_of(text) is None
