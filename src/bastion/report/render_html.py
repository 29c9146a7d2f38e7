"""The HTML report: one self-contained page (inline CSS and SVG), readable offline.

Jinja2 autoescapes everything taken from the report; only the SVG charts, which
matplotlib draws from numbers and our own titles escaped by matplotlib, are marked
safe.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from bastion.report.finding import Finding, Report, Severity
from bastion.report.frameworks import Entry, is_known, lookup
from bastion.report.write import RENDERERS

__all__ = ["render_html"]


@cache
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("bastion.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    return env.get_template("report.html.j2")


def _refs(ids: list[str]) -> list[Entry | str]:
    return [lookup(i) if is_known(i) else i for i in ids]


def _view(f: Finding) -> dict[str, Any]:
    from markupsafe import Markup

    from bastion.report.charts import chart_svg

    return {
        "f": f,
        "owasp": _refs(f.owasp),
        "atlas": _refs(f.atlas),
        "charts": [Markup(chart_svg(c)) for c in f.charts],
    }


def _verdict(report: Report) -> tuple[str, str]:
    worst = report.worst()
    if worst is None and not report.errors:
        return "pass", "No findings"
    if worst is None:
        return "warn", "Incomplete: some checks could not run"
    if worst >= Severity.HIGH:
        return "fail", f"{worst.value.capitalize()} findings need attention"
    return "warn", f"Worst finding is {worst.value}"


@RENDERERS.register("html")
def render_html(report: Report) -> str:
    counts = [(s.value, sum(f.severity is s for f in report.findings))
              for s in reversed(Severity)]
    verdict_class, verdict = _verdict(report)
    return str(_template().render(
        report=report, meta=report.metadata, counts=counts, verdict=verdict,
        verdict_class=verdict_class, findings=[_view(f) for f in report.findings],
    ))
