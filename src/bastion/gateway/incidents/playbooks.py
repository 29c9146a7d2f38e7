"""Playbooks: which actions answer which alarm, and the actions themselves.

An action is a small function from the gateway's levers and an alarm to a sentence
saying what it did; it raises :class:`ActionSkipped` when it does not apply (revoking
the token of a client that has none). Every action acts through the gateway's
:class:`~bastion.gateway.controls.Controls` or the monitor's block list, so it takes
effect on the client's next request.

=====================  ==============================================================
``block``              the monitor answers the token (or tokenless address) with 403
``revoke-token``       the API token is revoked in the database (401 from then on)
``tighten-rate-limit`` the client's rate limit becomes ``tight_limit``
``label-only``         the client gets labels only, whatever its role grants
``rollback-model``     the previous model version is served again
=====================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, field_validator

from bastion.gateway.incidents.alarm import Alarm, Kind, Level

__all__ = ["ACTIONS", "ActionSkipped", "Blocker", "Levers", "Playbooks"]


class ActionSkipped(Exception):
    """The action does not apply to this alarm; the message says why."""


class Blocker(Protocol):
    def block(self, subject_kind: str, subject: str) -> None: ...


class _Controls(Protocol):
    def revoke_token(self, token_id: str) -> None: ...
    def set_rate_limit(self, kind: str, key: str, limit: str | None) -> None: ...
    def set_label_only(self, kind: str, key: str, on: bool = True) -> None: ...
    def rollback(self) -> object: ...


@dataclass(frozen=True)
class Levers:
    """What actions may pull: the gateway's controls and the monitor's block list."""

    controls: _Controls
    blocker: Blocker
    tight_limit: str


def _client_subject(alarm: Alarm) -> tuple[str, str]:
    if alarm.subject_kind not in ("token", "client"):
        raise ActionSkipped(f"the alarm concerns a {alarm.subject_kind}, not a client")
    return alarm.subject_kind, alarm.subject


def _block(levers: Levers, alarm: Alarm) -> str:
    kind, key = _client_subject(alarm)
    levers.blocker.block(kind, key)
    return f"{kind} {key} refused with 403 from its next request"


def _revoke(levers: Levers, alarm: Alarm) -> str:
    if alarm.subject_kind != "token":
        raise ActionSkipped("the client has no API token to revoke")
    levers.controls.revoke_token(alarm.subject)
    return f"token {alarm.subject} revoked"


def _tighten(levers: Levers, alarm: Alarm) -> str:
    kind, key = _client_subject(alarm)
    levers.controls.set_rate_limit(kind, key, levers.tight_limit)
    return f"{kind} {key} limited to {levers.tight_limit}"


def _label_only(levers: Levers, alarm: Alarm) -> str:
    kind, key = _client_subject(alarm)
    levers.controls.set_label_only(kind, key)
    return f"{kind} {key} now gets labels only"


def _rollback(levers: Levers, alarm: Alarm) -> str:
    version = levers.controls.rollback()
    return f"rolled back; now serving {getattr(version, 'name', version)}"


ACTIONS: dict[str, Callable[[Levers, Alarm], str]] = {
    "block": _block,
    "revoke-token": _revoke,
    "tighten-rate-limit": _tighten,
    "label-only": _label_only,
    "rollback-model": _rollback,
}


def _default(kind: Kind) -> dict[Level, list[str]]:
    if kind is Kind.EXTRACTION:  # starve it of probabilities first, then cut it off
        return {Level.THROTTLE: ["label-only", "tighten-rate-limit"], Level.BLOCK: ["block"]}
    if kind is Kind.ADVERSARIAL:
        return {Level.THROTTLE: ["tighten-rate-limit"], Level.BLOCK: ["block"]}
    # Input drift is not the model's fault: alert by default; add rollback-model when a
    # new version is what changed.
    return {Level.ALERT: []}


class Playbooks(BaseModel):
    """Actions per attack kind and level (the ``[monitor.playbooks]`` TOML table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extraction: dict[Level, list[str]] = _default(Kind.EXTRACTION)
    adversarial: dict[Level, list[str]] = _default(Kind.ADVERSARIAL)
    drift: dict[Level, list[str]] = _default(Kind.DRIFT)
    tight_limit: str = "10/minute"

    @field_validator("extraction", "adversarial", "drift")
    @classmethod
    def _known_actions(cls, plan: dict[Level, list[str]]) -> dict[Level, list[str]]:
        unknown = sorted({a for actions in plan.values() for a in actions} - set(ACTIONS))
        if unknown:
            raise ValueError(f"unknown action(s) {', '.join(unknown)}; known: "
                             f"{', '.join(ACTIONS)}")
        return plan

    def actions(self, alarm: Alarm) -> list[str]:
        plan: dict[Level, list[str]] = getattr(self, alarm.kind.value)
        return list(plan.get(alarm.level, []))
