from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bastion.report import Finding, Report, RunMetadata, Severity


def _finding(sev: Severity, fid: str = "c/x") -> Finding:
    return Finding(id=fid, check="c", title="t", severity=sev)


def test_severity_orders_from_info_to_critical() -> None:
    ordered = [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
    assert sorted(reversed(ordered)) == ordered
    assert Severity.HIGH >= Severity.MEDIUM and not Severity.LOW >= Severity.MEDIUM


def test_report_worst_and_threshold() -> None:
    meta = RunMetadata(tool_version="0", command="scan", started_at=datetime.now(UTC))
    report = Report(
        metadata=meta,
        findings=[_finding(Severity.LOW, "a"), _finding(Severity.HIGH, "b")],
    )
    assert report.worst() is Severity.HIGH
    assert [f.id for f in report.at_or_above(Severity.MEDIUM)] == ["b"]
    assert Report(metadata=meta).worst() is None


def test_finding_rejects_unknown_fields_and_bad_severity() -> None:
    with pytest.raises(ValidationError):
        Finding(id="a", check="c", title="t", severity="severe")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Finding(id="a", check="c", title="t", severity=Severity.LOW, surprise=1)  # type: ignore[call-arg]
