"""``check_renderer``: the contract every report renderer passes.

It renders an empty report and a rich one (every severity, metrics, charts, hostile
strings in every field, errors and skips) and checks that the output is text, is the
same twice, leaves the report untouched, and never lets markup from the report
through where the format is markup.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bastion.report.finding import (
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
from bastion.report.write import Renderer

__all__ = ["HOSTILE", "check_renderer", "rich_report"]

HOSTILE = "<script>alert('x')</script> & \"quotes\" | pipes"


def rich_report() -> Report:
    """A report that exercises every field a renderer must show."""
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    findings = [
        Finding(
            id=f"demo/{sev.value}", check="data-quality" if i % 2 else "robustness",
            title=f"{sev.value} finding {HOSTILE}", severity=sev, description=HOSTILE,
            owasp=["ML01"], atlas=["AML.T0043", "AML.T9999"],
            metrics=[Metric(name="robust accuracy", value=0.125 * i, unit="ratio")],
            evidence={"indices": [1, 2, 3], "note": HOSTILE},
            charts=[Chart(title=f"chart {HOSTILE}", kind=("line", "bar", "hist")[i % 3],
                          x_label="eps", y_label="accuracy",
                          series=[Series(name="pgd", x=[0.0, 0.1, 0.2], y=[0.9, 0.5, 0.1])])]
            if i < 3 else [],
            recommendation=f"fix it {HOSTILE}", location="models/model.onnx",
        )
        for i, sev in enumerate(reversed(Severity))
    ]
    meta = RunMetadata(
        tool_version="0.0.0", command="scan", started_at=started, finished_at=started,
        config={"fail_on": "high", "note": HOSTILE},
        artifacts=[ArtifactInfo(role="model", path="models/model.onnx", sha256="ab" * 32,
                                size_bytes=10, format="onnx")],
        checks_run=["robustness", "data-quality"], timings_s={"robustness": 1.5, "total": 2.0},
    )
    return Report(
        metadata=meta, findings=findings,
        errors=[CheckError(check="membership", message=f"boom {HOSTILE}")],
        skipped=[SkippedCheck(check="pii", reason=f"needs training data {HOSTILE}")],
    )


def check_renderer(name: str, renderer: Renderer) -> None:
    """Raise AssertionError naming the broken rule when ``renderer`` breaks the contract."""
    empty = Report(metadata=RunMetadata(
        tool_version="0", command="scan", started_at=datetime(2026, 1, 1, tzinfo=UTC)))
    for report in (empty, rich_report()):
        before = report.model_dump_json()
        first = renderer(report)
        assert isinstance(first, str) and first, f"{name}: output must be non-empty text"
        assert renderer(report) == first, f"{name}: output must be deterministic"
        assert report.model_dump_json() == before, f"{name}: must not change the report"
    text = renderer(rich_report())
    if name == "html":
        assert "<script>" not in text, "html: report strings must be escaped"
    assert "boom" in text, f"{name}: check errors must be shown"
    assert "needs training data" in text, f"{name}: skipped checks must be shown"
