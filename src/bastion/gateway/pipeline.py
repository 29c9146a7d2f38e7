"""One prediction request, start to finish, without HTTP: authenticate → ask the guards →
rate-limit → validate → predict → harden the output. The FastAPI route awaits this on
the event loop, then commits the audit record before it answers. Only the rate-limit
storage is awaited; the rest is quick CPU work (token lookups are cached), and the model
runs on the loop as in a plain FastAPI endpoint: for parallelism, run several workers.

Each refusal is a :class:`Refusal` carrying the HTTP status, a message safe to return
and the decision written to the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from starlette.requests import Request

from bastion.defenses.output import OutputPolicy
from bastion.gateway.auth import AccessDeniedError, Authenticator, Principal
from bastion.gateway.controls import Controls
from bastion.gateway.hooks import Guard, Verdict, strictest
from bastion.gateway.ratelimit import RateLimits, StorageError
from bastion.gateway.settings import GatewaySettings
from bastion.gateway.slots import ModelSlot
from bastion.gateway.validation import InputRejectedError, InputSpec, parse_batch

__all__ = ["Outcome", "Pipeline", "Refusal"]

_LABEL_ONLY = OutputPolicy(mode="label")


class Refusal(Exception):
    """The request is refused: ``status`` and ``message`` for the client, ``decision``
    for the audit log, ``retry_after_s`` for 429s."""

    def __init__(self, status: int, message: str, decision: str, *,
                 principal: Principal | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.decision = decision
        self.principal = principal
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Outcome:
    """A served prediction: what to answer and what to record."""

    principal: Principal
    decision: str
    model_version: str
    x: np.ndarray
    proba: np.ndarray
    outputs: list[dict[str, object]]

    def prediction(self) -> str:
        """What the audit log keeps: the predicted labels, never the input."""
        return "[" + ", ".join(map(str, self.proba.argmax(axis=1).tolist())) + "]"  # = json


class Pipeline:
    """The request path, with every component it consults."""

    def __init__(self, *, settings: GatewaySettings, auth: Authenticator, limits: RateLimits,
                 models: ModelSlot, controls: Controls, guards: Sequence[Guard]) -> None:
        self._auth = auth
        self._limits = limits
        self._models = models
        self._controls = controls
        self._guards = tuple(guards)
        model = models.current.model
        self._spec = InputSpec(tuple(model.input_shape), model.bounds, settings.max_batch,
                               settings.dtype)
        self._policies = {
            name: OutputPolicy(mode=role.output, k=role.top_k, digits=role.digits)
            for name, role in settings.roles.items()
        }

    @property
    def guards(self) -> tuple[Guard, ...]:
        return self._guards

    async def serve(self, request: Request, body: bytes, content_type: str,
                    client: str) -> Outcome:
        principal = self._authenticate(request)
        verdict = strictest([g.before(client, principal.token_id) for g in self._guards])
        if verdict is Verdict.BLOCK:
            raise Refusal(403, "this client is blocked", "blocked", principal=principal)
        if verdict is Verdict.THROTTLE:
            raise Refusal(429, "too many requests; slow down", "throttled",
                          principal=principal, retry_after_s=60.0)
        try:
            wait_s = await self._limits.hit(client=client, token_id=principal.token_id)
        except StorageError:
            raise Refusal(503, "rate limiting is unavailable; try again later", "unavailable",
                          principal=principal) from None
        if wait_s is not None:
            raise Refusal(429, f"rate limit exceeded; retry in {wait_s:.0f} s", "rate-limited",
                          principal=principal, retry_after_s=wait_s)
        try:
            x = parse_batch(body, content_type, self._spec)
        except InputRejectedError as err:
            raise Refusal(err.status, err.message, "invalid", principal=principal) from None
        version = self._models.current
        proba = version.predict_proba(x)
        label_only = verdict is Verdict.LABEL_ONLY or self._controls.is_label_only(
            client, principal.token_id)
        policy = _LABEL_ONLY if label_only else self._policies[principal.role]
        decision = "label-only" if label_only else "allow"
        return Outcome(principal, decision, version.name, x, proba, policy(proba))

    def _authenticate(self, request: Request) -> Principal:
        try:
            principal = self._auth.authenticate(request)
            principal.require("predict")
        except AccessDeniedError as err:
            decision = {401: "unauthenticated", 403: "forbidden"}.get(err.status, "unavailable")
            raise Refusal(err.status, err.message, decision) from None
        return principal
