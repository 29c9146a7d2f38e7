"""The Markdown report: a summary, a findings table, one section per finding."""

from __future__ import annotations

import json

from bastion.report.finding import Finding, Report, Severity
from bastion.report.frameworks import is_known, lookup
from bastion.report.write import RENDERERS

__all__ = ["render_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _refs(ids: list[str]) -> str:
    parts = []
    for i in ids:
        if is_known(i):
            e = lookup(i)
            parts.append(f"[{i} {e.name}]({e.url})")
        else:
            parts.append(i)
    return ", ".join(parts) or "—"


def _finding(f: Finding) -> list[str]:
    lines = [f"### {_cell(f.title)}", "", f"`{f.id}` · **{f.severity.value}** · check "
             f"`{f.check}`" + (f" · {_cell(f.location)}" if f.location else ""), ""]
    if f.description:
        lines += [f.description, ""]
    lines += [f"- OWASP: {_refs(f.owasp)}", f"- ATLAS: {_refs(f.atlas)}", ""]
    if f.metrics:
        lines += ["| metric | value | unit |", "|---|---|---|"]
        lines += [f"| {_cell(m.name)} | {m.value:.6g} | {_cell(m.unit)} |" for m in f.metrics]
        lines.append("")
    if f.evidence:
        lines += ["```json", json.dumps(f.evidence, indent=2, sort_keys=True, default=str),
                  "```", ""]
    if f.recommendation:
        lines += [f"**Recommendation:** {f.recommendation}", ""]
    return lines


@RENDERERS.register("md")
def render_markdown(report: Report) -> str:
    meta = report.metadata
    counts = {s: sum(f.severity is s for f in report.findings) for s in Severity}
    lines = [
        "# bastion report", "",
        f"{meta.tool} {meta.tool_version} · `{meta.command}` · {meta.started_at.isoformat()}",
        "",
        "| " + " | ".join(s.value for s in reversed(Severity)) + " | errors | skipped |",
        "|" + "---|" * (len(Severity) + 2),
        "| " + " | ".join(str(counts[s]) for s in reversed(Severity))
        + f" | {len(report.errors)} | {len(report.skipped)} |",
        "", "## Findings", "",
    ]
    if report.findings:
        lines += ["| severity | id | title |", "|---|---|---|"]
        lines += [f"| {f.severity.value} | `{f.id}` | {_cell(f.title)} |"
                  for f in report.findings]
        lines.append("")
        for f in report.findings:
            lines += _finding(f)
    else:
        lines += ["No findings.", ""]
    lines += ["## Errors (could not look)", ""]
    lines += [f"- `{e.check}`: {_cell(e.message)}" for e in report.errors] or ["None."]
    lines += ["", "## Skipped checks", ""]
    lines += [f"- `{s.check}`: {_cell(s.reason)}" for s in report.skipped] or ["None."]
    lines += ["", "## Run", "", "| input | path | sha256 | format |", "|---|---|---|---|"]
    lines += [f"| {a.role} | {_cell(a.path)} | `{a.sha256}` | {a.format} |"
              for a in meta.artifacts]
    lines += ["", "| step | seconds |", "|---|---|"]
    lines += [f"| {_cell(k)} | {v:.3f} |" for k, v in meta.timings_s.items()]
    return "\n".join(lines) + "\n"
