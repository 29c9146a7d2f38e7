"""API tokens: shown once, stored only as a peppered hash, with a role, scopes, expiry
and revocation.

A token reads ``bst_<id>_<secret>``. The id (public, 16 hex digits) finds the row; the
database holds only ``HMAC-SHA256(pepper, token)``, so a stolen database gives neither
usable tokens nor, without the pepper kept outside it, a way to test guesses offline.
Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import insert, select, update

from bastion.errors import ConfigError, UnknownPluginError
from bastion.gateway.db import Database, tokens
from bastion.gateway.settings import RoleSettings

__all__ = ["TokenInfo", "TokenStore", "parse_duration"]

_PREFIX = "bst_"
_CACHE_MAX = 10_000


@dataclass(frozen=True)
class TokenInfo:
    """A token's public facts (never its secret or digest)."""

    id: str
    name: str
    role: str
    scopes: tuple[str, ...]
    created: float
    expires: float | None
    revoked: bool

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


class TokenStore:
    """Create, look up, list and revoke API tokens in the gateway database."""

    def __init__(self, db: Database, pepper: SecretStr, roles: dict[str, RoleSettings], *,
                 cache_s: float = 0.0) -> None:
        self._db = db
        self._key = pepper.get_secret_value().encode()
        self._roles = roles
        # id -> (looked up at, digest, facts): spares a database read per request. A
        # revocation made by another process is seen after at most ``cache_s`` seconds
        # (this process's own revocations at once).
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, str, TokenInfo]] = {}

    def create(
        self,
        *,
        name: str,
        role: str,
        scopes: tuple[str, ...] | None = None,
        ttl_s: float | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token and its facts; the token string exists only in the return value."""
        if role not in self._roles:
            known = ", ".join(sorted(self._roles))
            raise UnknownPluginError(f"unknown role {role!r}; configured roles: {known}")
        allowed = self._roles[role].scopes
        scopes = allowed if scopes is None else tuple(scopes)
        beyond = sorted(set(scopes) - set(allowed))
        if beyond:
            raise ConfigError(f"role {role!r} may not hold scope(s) {', '.join(beyond)}")
        if ttl_s is not None and ttl_s <= 0:
            raise ConfigError("a token's lifetime must be positive")
        token_id = secrets.token_hex(8)
        token = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        info = TokenInfo(token_id, name, role, scopes, now, None if ttl_s is None
                         else now + ttl_s, False)
        with self._db.writing() as conn:
            conn.execute(insert(tokens).values(
                id=token_id, name=name, role=role, scopes=" ".join(scopes),
                digest=self._digest(token), created=now, expires=info.expires, revoked=False,
            ))
        return token, info

    def verify(self, token: str) -> TokenInfo | None:
        """The token's facts if the string is a token issued here, else ``None``.

        Expiry and revocation are the caller's to judge (to answer why access failed).
        """
        token_id = token_id_of(token)
        if token_id is None:
            return None
        now = time.monotonic()
        cached = self._cache.get(token_id)
        if cached is None or now - cached[0] > self._cache_s:
            with self._db.engine.connect() as conn:
                row = conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
            if row is None:
                return None
            cached = (now, row.digest, _info(row))
            if self._cache_s > 0:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[token_id] = cached
        _, digest, info = cached
        return info if hmac.compare_digest(digest, self._digest(token)) else None

    def list(self) -> list[TokenInfo]:
        with self._db.engine.connect() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.created)).all()
        return [_info(r) for r in rows]

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by id; ``False`` when no such token exists."""
        with self._db.writing() as conn:
            done = conn.execute(update(tokens).where(tokens.c.id == token_id)
                                .values(revoked=True))
        self._cache.pop(token_id, None)
        return bool(done.rowcount)

    def _digest(self, token: str) -> str:
        # Not the one-shot hmac.digest: it lets go of the GIL around a 2 µs hash, and on
        # the request path that hands the event loop to the monitor's or the audit
        # writer's thread for up to a switch interval (5 ms) in the middle of a request.
        return hmac.new(self._key, token.encode(), "sha256").hexdigest()


def token_id_of(token: str) -> str | None:
    """The id part of a ``bst_<id>_<secret>`` string, or ``None`` if it is not one."""
    if not token.startswith(_PREFIX):
        return None
    token_id, sep, secret = token.removeprefix(_PREFIX).partition("_")
    if not sep or len(token_id) != 16 or not secret:
        return None
    try:
        int(token_id, 16)
    except ValueError:
        return None
    return token_id


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise ConfigError(f"duration {text!r} must look like 90s, 15m, 12h or 30d")
    return float(int(number) * units[unit])


def _info(row: object) -> TokenInfo:
    r = row._mapping  # type: ignore[attr-defined]
    return TokenInfo(r["id"], r["name"], r["role"], tuple(r["scopes"].split()),
                     r["created"], r["expires"], bool(r["revoked"]))
