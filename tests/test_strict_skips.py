"""The suite's strict mode (tests/conftest.py): in CI a skip is a failure, save the two
documented ones."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PROBE = """
import pytest
def test_missing_server(): pytest.skip("redis-server is not installed")
def test_no_gpu(): pytest.skip("needs a CUDA device")
"""


@pytest.mark.parametrize(("strict", "failed", "skipped"), [("1", 1, 1), ("", 0, 2)])
def test_strict_mode_fails_skips_except_the_allowed_ones(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, strict: str, failed: int,
        skipped: int) -> None:
    monkeypatch.setenv("BASTION_TEST_STRICT", strict)
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makepyfile(test_probe=PROBE)
    pytester.runpytest("-p", "no:xdist").assert_outcomes(failed=failed, skipped=skipped)
