"""JWT bearer tokens against a configured public key or JWKS file, over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bastion.errors import ConfigError
from bastion.gateway.server import running
from bastion.gateway.settings import GatewaySettings

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PEM = _KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)


def _jwt(key: Any = _KEY, alg: str = "RS256", **claims: Any) -> str:
    body = {"sub": "svc-1", "role": "analyst", "exp": int(time.time()) + 60, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg,
                      headers={"kid": "k1"})


@pytest.fixture(scope="module", params=["pem", "jwks"])
def url(request: pytest.FixtureRequest, make_app: Callable[..., Any], settings: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("jwt")
    if request.param == "pem":
        (tmp_path / "pub.pem").write_bytes(_PEM)
        update = {"jwt_public_key_file": tmp_path / "pub.pem"}
    else:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(_KEY.public_key()))
        (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
        update = {"jwt_jwks_file": tmp_path / "jwks.json"}
    with running(make_app(settings=settings.model_copy(update=update))) as base:
        yield base


def _whoami(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/whoami", headers={"Authorization": f"Bearer {token}"})


def test_valid_jwt_gets_its_role(url: str) -> None:
    r = _whoami(url, _jwt())
    assert r.status_code == 200
    assert r.json() == {"token_id": "jwt:svc-1", "role": "analyst",
                        "scopes": ["audit:read", "predict"]}


@pytest.mark.parametrize(("token", "status", "words"), [
    (lambda: _jwt(exp=int(time.time()) - 10), 401, "expired"),
    (lambda: _jwt(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)), 401,
     "not valid"),
    # algorithm confusion: the public key used as an HMAC secret must not verify
    (lambda: _hs256(), 401, "not valid"),
    (lambda: _jwt(key=ec.generate_private_key(ec.SECP256R1()), alg="ES256"), 401, "not valid"),
    (lambda: _jwt(role=None), 403, "'role'"),
    (lambda: _jwt(role="root"), 403, "not configured"),
    (lambda: _jwt(exp=None), 401, "not valid"),
    (lambda: _jwt(scope="audit:read"), 403, "'predict'"),
])
def test_bad_jwts_are_refused(url: str, token: Callable[[], str], status: int,
                              words: str) -> None:
    r = _whoami(url, token())
    assert r.status_code == status and words in r.json()["detail"]


def _hs256() -> str:
    """An HS256 token keyed with the public PEM, built by hand (pyjwt refuses to)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps({"sub": "x", "role": "admin", "exp": int(time.time()) + 60}).encode())
    sig = hmac.new(_PEM, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def test_symmetric_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        GatewaySettings(jwt_algorithms=["HS256"])


def test_bad_key_file_is_a_config_error(make_app: Callable[..., Any], settings: Any,
                                        tmp_path: Path) -> None:
    (tmp_path / "pub.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="PEM public key"):
        make_app(settings=settings.model_copy(update={"jwt_public_key_file":
                                                      tmp_path / "pub.pem"}))
