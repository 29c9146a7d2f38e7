"""What the runtime monitor raises and the incident responder acts on."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

__all__ = ["Alarm", "AlarmSink", "Kind", "Level"]


class Kind(StrEnum):
    """The attack (or condition) an alarm is about; playbooks are chosen by it."""

    EXTRACTION = "extraction"
    ADVERSARIAL = "adversarial"
    DRIFT = "drift"


class Level(StrEnum):
    """How hard to respond: ``throttle`` slows a client down, ``block`` stops it,
    ``alert`` (drift) concerns the model rather than one client."""

    THROTTLE = "throttle"
    BLOCK = "block"
    ALERT = "alert"


@dataclass(frozen=True, kw_only=True)
class Alarm:
    """One detection. ``subject`` is a token id, a client address or a model version,
    as ``subject_kind`` says; ``evidence`` holds numbers only, never inputs."""

    kind: Kind
    level: Level
    subject_kind: str
    subject: str
    risk: float
    summary: str
    time: float
    evidence: dict[str, float] = field(default_factory=dict)


class AlarmSink(Protocol):
    """Where the monitor sends alarms (the incident responder)."""

    def handle(self, alarm: Alarm) -> None: ...
