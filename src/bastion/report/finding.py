"""What a check finds, what it could not do, and the report that holds it all.

Findings, errors and skipped checks are three separate lists: "nothing found" must
never be confused with "could not look". Everything here is plain data (pydantic),
serialised to JSON against the versioned schema in ``report/schema``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactInfo",
    "Chart",
    "CheckError",
    "Finding",
    "Metric",
    "Report",
    "RunMetadata",
    "Series",
    "Severity",
    "SkippedCheck",
]

SCHEMA_VERSION = "1.0.0"


class Severity(StrEnum):
    """How bad a finding is; ordered, so ``--fail-on high`` can compare."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_RANK = {s: i for i, s in enumerate(Severity)}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Metric(_Frozen):
    """A measured number with its unit (``"ratio"``, ``"%"``, ``"s"``, ``"queries"``...)."""

    name: str
    value: float
    unit: str
    description: str = ""


class Series(_Frozen):
    """One line or set of bars in a chart; ``x`` may be numbers or category labels."""

    name: str
    x: list[float] | list[str]
    y: list[float]


class Chart(_Frozen):
    """Chart data carried by a finding; renderers decide how to draw it."""

    title: str
    kind: Literal["line", "bar", "hist"]
    x_label: str
    y_label: str
    series: list[Series]


class Finding(_Frozen):
    """One thing a check found, mapped to OWASP ML Top 10 and MITRE ATLAS.

    ``id`` is stable across runs for the same finding (``check/slug``); ``evidence``
    holds JSON-able facts (indices, counts, masked examples) but never raw user data.
    """

    id: str
    check: str
    title: str
    severity: Severity
    description: str = ""
    owasp: list[str] = Field(default_factory=list)
    atlas: list[str] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    charts: list[Chart] = Field(default_factory=list)
    recommendation: str = ""
    location: str | None = None  # a file path or other locator, for SARIF and humans


class CheckError(_Frozen):
    """A check that started but failed; its area was not looked at."""

    check: str
    message: str


class SkippedCheck(_Frozen):
    """A check that did not run, and why (missing input, user choice)."""

    check: str
    reason: str


class ArtifactInfo(_Frozen):
    """An input the run used, identified by content hash."""

    role: str  # "model", "train", "test", ...
    path: str
    sha256: str
    size_bytes: int
    format: str = ""


class RunMetadata(BaseModel):
    """Facts about the run: who, what, with which settings, how long."""

    model_config = ConfigDict(extra="forbid")

    tool: str = "bastion"
    tool_version: str
    command: str
    started_at: datetime
    finished_at: datetime | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[ArtifactInfo] = Field(default_factory=list)
    checks_run: list[str] = Field(default_factory=list)
    timings_s: dict[str, float] = Field(default_factory=dict)
    python: str = ""
    platform: str = ""


class Report(BaseModel):
    """A run's findings, errors and skips plus metadata; renderers only read it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str = SCHEMA_VERSION
    metadata: RunMetadata
    findings: list[Finding] = Field(default_factory=list)
    errors: list[CheckError] = Field(default_factory=list)
    skipped: list[SkippedCheck] = Field(default_factory=list)

    def worst(self) -> Severity | None:
        """The highest severity among findings, or None when there are none."""
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity >= threshold]
