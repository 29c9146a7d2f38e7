import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from bastion.report.render_html import render_html
from bastion.testing.renderers import HOSTILE, rich_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    page = tmp_path / "report.html"
    page.write_text(render_html(rich_report()), encoding="utf-8")
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )


def test_hostile_strings_are_escaped() -> None:
    html = render_html(rich_report())
    assert "<script" not in html
    assert "&lt;script&gt;alert(" in html
    assert HOSTILE not in html


def test_self_contained_sorted_and_apart() -> None:
    html = render_html(rich_report())
    for external in ("src=\"http", "<link", "@import", "url(http"):
        assert external not in html  # nothing is fetched: readable offline
    assert "@media print" in html
    assert html.index("critical finding") < html.index("high finding") < html.index("info finding")
    assert html.count("<svg") == 3
    assert "boom" in html and "needs training data" in html


@pytest.mark.browser
@needs_chromium
def test_screenshot_is_a_non_blank_png(tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 2000)
    assert len(data) > 20_000  # a blank page compresses to a few kilobytes


@pytest.mark.browser
@needs_chromium
def test_charts_are_in_the_rendered_dom(tmp_path: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom").stdout
    assert dom.count("<svg") == 3
    assert "<script>alert" not in dom
