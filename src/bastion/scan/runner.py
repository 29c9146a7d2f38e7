"""Runs the checks that apply to one or more targets and collects a Report.

The runner owns the rule that findings, errors and skips stay apart: a check that
does not apply is *skipped* with the reason (what input it needs), a check that
raises is an *error* (its area was not looked at), and only what ``run`` returns
are *findings*.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bastion import __version__
from bastion.errors import BastionError
from bastion.progress import emit
from bastion.report.finding import (
    ArtifactInfo,
    CheckError,
    Finding,
    Report,
    RunMetadata,
    Severity,
    SkippedCheck,
)
from bastion.scan.check import CHECKS, NEED_HINTS, Check, ScanContext, Target

__all__ = ["NamedTarget", "exit_code", "run_scan", "select_checks"]


@dataclass(frozen=True)
class NamedTarget:
    """A target with a short name; names prefix finding ids when a scan has several."""

    name: str
    target: Target


def select_checks(names: Sequence[str] | None = None) -> list[Check]:
    """Instances of the named checks (all registered ones when ``names`` is None).

    An unknown name raises ``UnknownPluginError`` with the closest known names.
    """
    chosen = CHECKS.names() if not names else list(dict.fromkeys(names))
    return [CHECKS.get(name)() for name in chosen]


def _skip_reason(check: Check, target: Target) -> str:
    missing = target.missing(tuple(getattr(check, "needs", ())))
    if missing:
        return "needs " + " and ".join(NEED_HINTS.get(n, n) for n in missing)
    return "does not apply to this model or data"


def _label(scope: str, check: str) -> str:
    return f"{scope}: {check}" if scope else check


def _scoped(finding: Finding, scope: str) -> Finding:
    if not scope:
        return finding
    return finding.model_copy(
        update={"id": f"{scope}/{finding.id}", "location": finding.location or scope}
    )


def run_scan(
    targets: Sequence[NamedTarget],
    *,
    checks: Sequence[Check],
    ctx: ScanContext,
    command: str = "scan",
    config: dict[str, Any] | None = None,
    artifacts: Sequence[ArtifactInfo] = (),
) -> Report:
    """Run every check on every target and return the report.

    A ``BastionError`` or any other exception from a check is recorded as a
    ``CheckError`` for that check; the other checks still run.
    """
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    findings: list[Finding] = []
    errors: list[CheckError] = []
    skipped: list[SkippedCheck] = []
    timings: dict[str, float] = {}
    ran: list[str] = []
    multi = len(targets) > 1
    total = len(targets) * len(checks)
    done = 0
    for named in targets:
        scope = named.name if multi else ""
        for check in checks:
            label = _label(scope, check.name)
            emit(ctx.progress, "scan", done, total, label)
            if not check.applies(named.target):
                skipped.append(SkippedCheck(check=label, reason=_skip_reason(check, named.target)))
            else:
                ran.append(label)
                c0 = time.perf_counter()
                try:
                    findings.extend(_scoped(f, scope) for f in check.run(named.target, ctx))
                except BastionError as err:
                    errors.append(CheckError(check=label, message=str(err)))
                except Exception as err:  # a check's bug must not hide the other checks
                    errors.append(
                        CheckError(check=label, message=f"{type(err).__name__}: {err}")
                    )
                timings[label] = round(time.perf_counter() - c0, 4)
            done += 1
    emit(ctx.progress, "scan", done, total, "done")
    timings["total"] = round(time.perf_counter() - t0, 4)
    findings.sort(key=lambda f: (-f.severity.rank, f.id))
    metadata = RunMetadata(
        tool_version=__version__,
        command=command,
        started_at=started,
        finished_at=datetime.now(UTC),
        config=dict(config or {}),
        artifacts=list(artifacts),
        checks_run=ran,
        timings_s=timings,
        python=sys.version.split()[0],
        platform=platform.platform(terse=True),
    )
    return Report(metadata=metadata, findings=findings, errors=errors, skipped=skipped)


def exit_code(report: Report, fail_on: Severity) -> int:
    """0 clean · 1 findings at or above ``fail_on`` or a check failed · 3 nothing ran."""
    if not report.metadata.checks_run:
        return 3
    if report.at_or_above(fail_on) or report.errors:
        return 1
    return 0
