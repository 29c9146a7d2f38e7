import json
from pathlib import Path

import jsonschema

from bastion.report.render_sarif import render_sarif
from bastion.testing.renderers import rich_report

SCHEMA = json.loads((Path(__file__).parent / "fixtures/sarif-2.1.0-rtm.5.json").read_text())


def test_output_validates_against_the_official_schema() -> None:
    doc = json.loads(render_sarif(rich_report()))
    jsonschema.Draft7Validator(SCHEMA).validate(doc)


def test_levels_rules_locations_and_notifications() -> None:
    run = json.loads(render_sarif(rich_report()))["runs"][0]
    assert sorted(r["level"] for r in run["results"]) == sorted(
        ["error", "error", "warning", "note", "note"])
    assert sorted(r["id"] for r in run["tool"]["driver"]["rules"]) == ["data-quality", "robustness"]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "models/model.onnx")
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert any("membership" in n["message"]["text"] for n in inv["toolExecutionNotifications"])
