"""Levers an operator or an incident playbook pulls while the gateway runs: revoke a
token, tighten a rate limit, answer a client with labels only, roll the model back.
``app.state.controls`` in a running gateway."""

from __future__ import annotations

import threading

from bastion.gateway.auth import Authenticator
from bastion.gateway.ratelimit import RateLimits
from bastion.gateway.slots import ModelSlot, ModelVersion
from bastion.gateway.tokens import TokenStore

__all__ = ["Controls"]


class Controls:
    """Run-time changes to who is served, how fast and with what."""

    def __init__(
        self, *, tokens: TokenStore, auth: Authenticator, limits: RateLimits, models: ModelSlot
    ) -> None:
        self._tokens = tokens
        self._auth = auth
        self._limits = limits
        self._models = models
        self._label_only: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def revoke_token(self, token_id: str) -> None:
        """Refuse the token from the next request on (in the database for API tokens)."""
        self._auth.deny(token_id)
        if not token_id.startswith("jwt:"):
            self._tokens.revoke(token_id)

    def set_rate_limit(self, kind: str, key: str, limit: str | None) -> None:
        """Give a ``token`` or ``client`` its own limit, e.g. ``"5/minute"``; None resets."""
        self._limits.set_limit(kind, key, limit)

    def set_label_only(self, kind: str, key: str, on: bool = True) -> None:
        """Answer a ``token`` or ``client`` with labels only, whatever its role."""
        with self._lock:
            if on:
                self._label_only.add((kind, key))
            else:
                self._label_only.discard((kind, key))

    def is_label_only(self, client: str, token_id: str | None) -> bool:
        return ("client", client) in self._label_only or (
            token_id is not None and ("token", token_id) in self._label_only
        )

    def rollback(self) -> ModelVersion:
        """Serve the previous model version again."""
        return self._models.rollback()
