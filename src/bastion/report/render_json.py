"""The JSON report: the pydantic model as it is, validated by the shipped schema."""

from __future__ import annotations

from bastion.report.finding import Report
from bastion.report.write import RENDERERS

__all__ = ["render_json"]


@RENDERERS.register("json")
def render_json(report: Report) -> str:
    return report.model_dump_json(indent=2) + "\n"
