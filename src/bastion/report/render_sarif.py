"""SARIF 2.1.0, so code-scanning dashboards can show bastion findings next to others.

One run; one rule per check that produced findings; results carry the severity as a
level plus the exact severity, the OWASP/ATLAS ids as tags, and the metrics.
Check errors become tool execution notifications, so "could not look" is visible.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from bastion.report.finding import Finding, Report, Severity
from bastion.report.write import RENDERERS

__all__ = ["SARIF_SCHEMA", "render_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
          Severity.LOW: "note", Severity.INFO: "note"}
_SCORE = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
          Severity.LOW: "3.0", Severity.INFO: "0.0"}


def _rule(check: str, findings: list[Finding]) -> dict[str, Any]:
    first = findings[0]
    tags = sorted({t for f in findings for t in (*f.owasp, *f.atlas)})
    rule: dict[str, Any] = {
        "id": check,
        "name": "".join(part.capitalize() for part in check.split("-")),
        "shortDescription": {"text": f"bastion check {check}"},
        "properties": {"tags": ["security", *tags]},
    }
    if first.recommendation:
        rule["help"] = {"text": first.recommendation}
    return rule


def _location(f: Finding) -> list[dict[str, Any]]:
    if not f.location:
        return []
    uri = PurePath(f.location).as_posix()
    return [{"physicalLocation": {"artifactLocation": {"uri": uri}}}]


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    message = f.title + (f": {f.description}" if f.description else "")
    result: dict[str, Any] = {
        "ruleId": f.check,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": message},
        "partialFingerprints": {"bastionFindingId": f.id},
        "properties": {
            "severity": f.severity.value,
            "security-severity": _SCORE[f.severity],
            "owasp": f.owasp,
            "atlas": f.atlas,
            "metrics": {m.name: {"value": m.value, "unit": m.unit} for m in f.metrics},
        },
    }
    locations = _location(f)
    if locations:
        result["locations"] = locations
    return result


@RENDERERS.register("sarif")
def render_sarif(report: Report) -> str:
    meta = report.metadata
    by_check: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_check.setdefault(f.check, []).append(f)
    order = sorted(by_check)
    index = {c: i for i, c in enumerate(order)}
    invocation: dict[str, Any] = {
        "executionSuccessful": not report.errors,
        "startTimeUtc": meta.started_at.isoformat().replace("+00:00", "Z"),
        "toolExecutionNotifications": [
            {"level": "error", "message": {"text": f"{e.check}: {e.message}"}}
            for e in report.errors
        ] + [
            {"level": "note", "message": {"text": f"skipped {s.check}: {s.reason}"}}
            for s in report.skipped
        ],
    }
    if meta.finished_at is not None:
        invocation["endTimeUtc"] = meta.finished_at.isoformat().replace("+00:00", "Z")
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": meta.tool,
                "version": meta.tool_version,
                "rules": [_rule(c, by_check[c]) for c in order],
            }},
            "invocations": [invocation],
            "results": [_result(f, index[f.check]) for f in report.findings],
            "properties": {"reportSchemaVersion": report.schema_version},
        }],
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
