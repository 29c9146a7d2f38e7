from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest

from bastion.data import Dataset
from bastion.errors import InvalidDataError, UnknownPluginError
from bastion.progress import ProgressEvent
from bastion.report import Finding, Severity
from bastion.scan import ScanContext, Target
from bastion.scan.check import Need
from bastion.scan.runner import NamedTarget, exit_code, run_scan, select_checks


@dataclass(frozen=True, kw_only=True)
class _Finds:
    name: ClassVar[str] = "finds"
    title: ClassVar[str] = "finds things"
    owasp: ClassVar[tuple[str, ...]] = ("ML02",)
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0020",)
    needs: ClassVar[tuple[Need, ...]] = ("train",)
    severity: Severity = Severity.HIGH

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        return [Finding(id="finds/x", check=self.name, title="x", severity=self.severity)]


@dataclass(frozen=True, kw_only=True)
class _NeedsModel(_Finds):
    name: ClassVar[str] = "needs-model"
    needs: ClassVar[tuple[Need, ...]] = ("model", "test")


@dataclass(frozen=True, kw_only=True)
class _Raises(_Finds):
    name: ClassVar[str] = "raises"
    exc: Exception = field(default_factory=lambda: InvalidDataError("labels out of range"))

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        raise self.exc


def _target() -> Target:
    return Target(train=Dataset(x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1])))


def test_findings_errors_and_skips_stay_apart() -> None:
    events: list[ProgressEvent] = []
    report = run_scan(
        [NamedTarget("t", _target())],
        checks=[_Finds(), _NeedsModel(), _Raises(), _Raises(exc=RuntimeError("bug"))],
        ctx=ScanContext(progress=events.append),
    )
    assert [f.id for f in report.findings] == ["finds/x"]
    assert [e.message for e in report.errors] == [
        "labels out of range", "RuntimeError: bug",
    ]
    assert len(report.skipped) == 1
    assert report.skipped[0].reason == (
        "needs a model (--model) and held-out test data (--test)"
    )
    assert report.metadata.checks_run == ["finds", "raises", "raises"]
    assert events[-1].done and events[-1].total == 4


def test_several_targets_prefix_ids_and_set_location() -> None:
    report = run_scan(
        [NamedTarget("a", _target()), NamedTarget("b", _target())],
        checks=[_Finds()],
        ctx=ScanContext(),
    )
    assert sorted(f.id for f in report.findings) == ["a/finds/x", "b/finds/x"]
    assert {f.location for f in report.findings} == {"a", "b"}


def test_findings_are_sorted_worst_first() -> None:
    report = run_scan(
        [NamedTarget("t", _target())],
        checks=[_Finds(severity=Severity.LOW), _Finds(severity=Severity.CRITICAL)],
        ctx=ScanContext(),
    )
    assert [f.severity for f in report.findings] == [Severity.CRITICAL, Severity.LOW]


@pytest.mark.parametrize(
    ("checks", "fail_on", "code"),
    [
        ([_Finds(severity=Severity.MEDIUM)], Severity.HIGH, 0),
        ([_Finds(severity=Severity.HIGH)], Severity.HIGH, 1),
        ([_Finds(severity=Severity.CRITICAL)], Severity.HIGH, 1),
        ([_Raises()], Severity.CRITICAL, 1),
        ([_NeedsModel()], Severity.INFO, 3),
        ([], Severity.INFO, 3),
    ],
)
def test_exit_codes(checks: list[_Finds], fail_on: Severity, code: int) -> None:
    report = run_scan([NamedTarget("t", _target())], checks=checks, ctx=ScanContext())
    assert exit_code(report, fail_on) == code


def test_unknown_check_name_is_a_user_error() -> None:
    with pytest.raises(UnknownPluginError, match="unknown check 'no-such-check'"):
        select_checks(["no-such-check"])
