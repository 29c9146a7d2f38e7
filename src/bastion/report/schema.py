"""The versioned JSON Schema of the report, generated from the pydantic model.

The file ``schema/report-<version>.json`` ships with the package; a test keeps it
equal to :func:`report_schema`, so the schema cannot drift from the code.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from bastion.report.finding import SCHEMA_VERSION, Report

__all__ = ["SCHEMA_ID", "report_schema", "shipped_schema"]

SCHEMA_ID = f"https://bastion.dev/schemas/report-{SCHEMA_VERSION}.json"


def report_schema() -> dict[str, Any]:
    """The schema as generated now from :class:`Report` (draft 2020-12)."""
    schema = Report.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"bastion report {SCHEMA_VERSION}",
        **schema,
    }


def shipped_schema() -> dict[str, Any]:
    """The schema file installed with the package."""
    text = resources.files("bastion.report").joinpath(
        f"schema/report-{SCHEMA_VERSION}.json"
    ).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
