import json
import os
from pathlib import Path

import jsonschema
import pytest

from bastion.errors import ConfigError, InputNotFoundError, UnknownPluginError
from bastion.report import write
from bastion.report.schema import report_schema, shipped_schema
from bastion.report.write import RENDERERS, format_from_suffix, render, write_report
from bastion.testing import check_renderer
from bastion.testing.renderers import rich_report

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["json", "md", "html", "sarif"])
def test_every_renderer_passes_the_contract(name: str) -> None:
    assert name in RENDERERS.names()
    check_renderer(name, RENDERERS.get(name))


def test_shipped_schema_matches_the_model_and_validates_a_report() -> None:
    assert shipped_schema() == report_schema()
    jsonschema.Draft202012Validator(shipped_schema()).validate(
        json.loads(render(rich_report(), "json"))
    )


def test_json_round_trips() -> None:
    from bastion.report import Report

    report = rich_report()
    assert Report.model_validate_json(render(report, "json")) == report


def test_sarif_validates_against_the_official_schema() -> None:
    schema = json.loads((FIXTURES / "sarif-2.1.0-rtm.5.json").read_text())
    doc = json.loads(render(rich_report(), "sarif"))
    jsonschema.Draft4Validator(schema).validate(doc)
    run = doc["runs"][0]
    levels = {r["properties"]["severity"]: r["level"] for r in run["results"]}
    assert levels == {"critical": "error", "high": "error", "medium": "warning",
                      "low": "note", "info": "note"}
    assert run["invocations"][0]["executionSuccessful"] is False
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["data-quality", "robustness"]


def test_html_is_self_contained_escaped_and_has_charts() -> None:
    html = render(rich_report(), "html")
    assert html.count("<svg") == 3
    assert "&lt;script&gt;" in html and "<script>" not in html
    for external in ("<link", "src=", "@import", "url(http", "<iframe"):
        assert external not in html, f"the page must not load {external}"
    assert "AML.T0043" in html and "Craft Adversarial Data" in html


def test_markdown_links_framework_ids() -> None:
    md = render(rich_report(), "md")
    assert "[ML01 Input Manipulation Attack](https://owasp.org/" in md
    assert "AML.T9999" in md  # unknown ids are shown, not dropped


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("r.json", "json"), ("r.SARIF", "sarif"), ("r.sarif.json", "sarif"), ("r.md", "md"),
     ("r.htm", "html")],
)
def test_format_from_suffix(name: str, fmt: str) -> None:
    assert format_from_suffix(Path(name)) == fmt


def test_unknown_suffix_and_format_are_user_errors() -> None:
    with pytest.raises(ConfigError):
        format_from_suffix(Path("report.txt"))
    with pytest.raises(UnknownPluginError):
        render(rich_report(), "pdf")


def test_write_is_atomic_and_keeps_the_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.json"
    write_report(rich_report(), out)
    good = out.read_text()
    assert json.loads(good)["schema_version"] == "1.0.0"

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(write.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(rich_report(), out, "md")
    assert out.read_text() == good
    assert os.listdir(tmp_path) == ["r.json"]


def test_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        write_report(rich_report(), tmp_path / "nope" / "r.html")
