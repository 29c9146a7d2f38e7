"""Findings, reports and their renderers (JSON, Markdown, HTML, SARIF)."""

from bastion.report.finding import (
    SCHEMA_VERSION,
    ArtifactInfo,
    Chart,
    CheckError,
    Finding,
    Metric,
    Report,
    RunMetadata,
    Series,
    Severity,
    SkippedCheck,
)

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
