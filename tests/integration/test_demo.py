"""The built-in demo end to end: every check, every report format, a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from bastion.report import Report
from bastion.report.schema import shipped_schema
from bastion.report.write import render, write_report

pytestmark = pytest.mark.slow

SARIF_SCHEMA = Path(__file__).parents[1] / "report" / "fixtures" / "sarif-2.1.0-rtm.5.json"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    from bastion.demo import build_demo
    from bastion.scan import ScanContext
    from bastion.scan.runner import run_scan, select_checks

    targets, artifacts = build_demo(tmp_path_factory.mktemp("demo"), seed=0)
    return run_scan(targets, checks=select_checks(), ctx=ScanContext(seed=0),
                    artifacts=artifacts)


def test_demo_runs_every_applicable_check_without_errors(report: Report) -> None:
    assert report.errors == []
    ran = {label.split(": ")[1] for label in report.metadata.checks_run}
    assert {"artifact-integrity", "data-quality", "model-baseline", "robustness"} <= ran
    assert {a.role for a in report.metadata.artifacts} == {"model"}
    assert any(c.charts for c in report.findings)


def test_demo_json_validates_against_the_shipped_schema(report: Report) -> None:
    jsonschema.Draft202012Validator(shipped_schema()).validate(json.loads(render(report, "json")))


def test_demo_sarif_validates_against_sarif_2_1_0(report: Report) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft4Validator(schema).validate(json.loads(render(report, "sarif")))


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_demo_html_renders_in_chromium_with_its_charts(report: Report, tmp_path: Path) -> None:
    page = write_report(report, tmp_path / "report.html")
    dom = _chromium("--dump-dom", page.as_uri(), tmp=tmp_path).stdout
    assert dom.count("<svg") == sum(len(f.charts) for f in report.findings) > 0
    assert "bastion security report" in dom
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri(), tmp=tmp_path)
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1280, 1600)
        colours = img.convert("RGB").resize((64, 80)).getcolors(maxcolors=64 * 80)
    assert colours is not None and len(colours) > 20  # not a blank page


def test_cli_demo_writes_the_report_and_its_models(tmp_path: Path) -> None:
    out = tmp_path / "demo.html"
    result = subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", "scan", "--demo", "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    assert "Report written to" in result.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    models = sorted(p.name for p in (tmp_path / "bastion-demo-models").iterdir())
    assert models == ["breast-cancer-logreg.skops", "digits-cnn.safetensors"]
