"""Who is calling, and may they? API tokens (see :mod:`.tokens`) and, optionally, JWT
bearer tokens verified against a configured public key or JWKS file.

Roles map to scopes (RBAC); a token's effective scopes are those it was issued with that
its role still grants, so narrowing a role in the settings narrows every token at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from fastapi import HTTPException, Request
from sqlalchemy.exc import SQLAlchemyError

from bastion.errors import ConfigError, InputNotFoundError
from bastion.gateway.settings import GatewaySettings, RoleSettings
from bastion.gateway.tokens import TokenStore, token_id_of

__all__ = ["AccessDeniedError", "Authenticator", "Principal", "require_scope"]


class AccessDeniedError(Exception):
    """Authentication (401) or authorisation (403) failed, or could not be checked (503);
    the message is safe to return."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    token_id: str
    role: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise AccessDeniedError(403, f"this token lacks the {scope!r} scope")


class Authenticator:
    """Checks a request's bearer token: an API token first, else a JWT when configured."""

    def __init__(self, store: TokenStore, settings: GatewaySettings) -> None:
        self._store = store
        self._roles: dict[str, RoleSettings] = settings.roles
        self._jwt_key = _jwt_key_source(settings)
        self._algorithms = settings.jwt_algorithms
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._denied: set[str] = set()
        self._lock = threading.Lock()

    def deny(self, token_id: str) -> None:
        """Refuse a token id from now on in this process (JWTs cannot be revoked in a DB)."""
        with self._lock:
            self._denied.add(token_id)

    def authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise AccessDeniedError(401, "send 'Authorization: Bearer <token>'")
        credential = credential.strip()
        if token_id_of(credential) is not None:
            principal = self._api_token(credential)
        elif self._jwt_key is not None:
            principal = self._jwt(credential, self._jwt_key)
        else:
            raise AccessDeniedError(401, "the bearer token is not valid")
        if principal.token_id in self._denied:
            raise AccessDeniedError(401, "this token has been revoked")
        return principal

    def _api_token(self, token: str) -> Principal:
        try:
            info = self._store.verify(token)
        except SQLAlchemyError:
            # fail closed: no database, no way to know the token is still valid
            raise AccessDeniedError(503, "the token store is unavailable; try again later")\
                from None
        if info is None:
            raise AccessDeniedError(401, "the bearer token is not valid")
        if info.revoked:
            raise AccessDeniedError(401, "this token has been revoked")
        if info.expired(time.time()):
            raise AccessDeniedError(401, "this token has expired; ask for a new one")
        return self._principal(info.id, info.role, info.scopes)

    def _jwt(self, token: str, key_for: Callable[[str], Any]) -> Principal:
        try:
            key = key_for(token)
            claims = jwt.decode(
                token, key, algorithms=self._algorithms, audience=self._audience,
                issuer=self._issuer, options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AccessDeniedError(401, "this token has expired; ask for a new one") from None
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            # TypeError/ValueError: pyjwt's answer to a key of the wrong type for the
            # token's algorithm (an ES256 token against an RSA key)
            raise AccessDeniedError(401, "the bearer token is not valid") from None
        role = claims.get("role")
        if not isinstance(role, str):
            raise AccessDeniedError(403, "the JWT carries no 'role' claim")
        scope = claims.get("scope")
        scopes = tuple(scope.split()) if isinstance(scope, str) else None
        token_id = "jwt:" + str(claims.get("jti") or claims["sub"])
        return self._principal(token_id, role, scopes)

    def _principal(self, token_id: str, role: str, scopes: tuple[str, ...] | None) -> Principal:
        granted = self._roles.get(role)
        if granted is None:
            raise AccessDeniedError(403, f"role {role!r} is not configured on this gateway")
        held = set(granted.scopes) if scopes is None else set(scopes) & set(granted.scopes)
        return Principal(token_id, role, frozenset(held))


def require_scope(scope: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's :class:`Principal`, if it holds ``scope``."""

    def dependency(request: Request) -> Principal:
        authenticator: Authenticator = request.app.state.auth
        try:
            principal = authenticator.authenticate(request)
            principal.require(scope)
        except AccessDeniedError as err:
            headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
            raise HTTPException(err.status, err.message, headers=headers) from None
        return principal

    return dependency


def _jwt_key_source(settings: GatewaySettings) -> Callable[[str], Any] | None:
    """A function from a JWT to the key that must have signed it, or None if JWT is off."""
    if settings.jwt_public_key_file is not None:
        pem = _read(settings.jwt_public_key_file, "JWT public key")
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            public = load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                f"{settings.jwt_public_key_file} is not a PEM public key"
            ) from None
        return lambda _token: public
    if settings.jwt_jwks_file is not None:
        try:
            keyset = jwt.PyJWKSet.from_json(_read(settings.jwt_jwks_file, "JWKS"))
        except (jwt.PyJWTError, json.JSONDecodeError, ValueError):
            raise ConfigError(f"{settings.jwt_jwks_file} is not a valid JWKS file") from None

        def by_kid(token: str) -> Any:
            kid = jwt.get_unverified_header(token).get("kid")
            return keyset[str(kid)].key  # KeyError → invalid token

        return by_kid
    return None


def _read(path: Path, what: str) -> str:
    if not path.is_file():
        raise InputNotFoundError(f"{what} file {path} does not exist")
    return path.read_text(encoding="utf-8")
