import json

import jsonschema

from bastion.report.finding import Report
from bastion.report.render_json import render_json
from bastion.report.schema import report_schema, shipped_schema
from bastion.testing.renderers import rich_report


def test_shipped_schema_is_the_generated_one() -> None:
    assert shipped_schema() == report_schema()


def test_rendered_report_validates_and_round_trips() -> None:
    report = rich_report()
    data = json.loads(render_json(report))
    jsonschema.Draft202012Validator(shipped_schema()).validate(data)
    assert Report.model_validate(data) == report


def test_schema_rejects_a_bad_severity() -> None:
    data = json.loads(render_json(rich_report()))
    data["findings"][0]["severity"] = "catastrophic"
    assert not jsonschema.Draft202012Validator(shipped_schema()).is_valid(data)
