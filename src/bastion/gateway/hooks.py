"""Hook points where run-time defenses plug into the gateway.

A :class:`Guard` is consulted before each prediction (may the client be served, and
how?) and told about it afterwards (what was asked, what was answered). The runtime
monitor is a guard; so is anything else that wants to throttle or block clients
without touching the request path's code. Guards must be fast in ``before`` and may
queue slow work from ``after`` off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Guard", "RequestEvent", "Verdict", "strictest"]


@dataclass(frozen=True)
class RequestEvent:
    """What a guard sees after each prediction (inputs stay in memory, never logged)."""

    time: float
    request_id: str
    token_id: str | None
    role: str | None
    client: str
    x: np.ndarray
    proba: np.ndarray
    latency_ms: float
    decision: str


class Verdict(StrEnum):
    """A guard's answer; when guards disagree the strictest wins (see :func:`strictest`)."""

    ALLOW = "allow"
    THROTTLE = "throttle"
    LABEL_ONLY = "label-only"
    BLOCK = "block"


@runtime_checkable
class Guard(Protocol):
    """A run-time defense the gateway asks before and tells after each prediction."""

    def before(self, client: str, token_id: str | None) -> Verdict: ...

    def after(self, event: RequestEvent) -> None: ...


_SEVERITY = {Verdict.ALLOW: 0, Verdict.LABEL_ONLY: 1, Verdict.THROTTLE: 2, Verdict.BLOCK: 3}


def strictest(verdicts: list[Verdict]) -> Verdict:
    """The verdict that wins when several guards answer: block > throttle > label-only."""
    return max(verdicts, key=_SEVERITY.__getitem__, default=Verdict.ALLOW)
