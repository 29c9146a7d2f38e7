"""Suite-wide rule: under ``BASTION_TEST_STRICT=1`` (set by ``.ci/run``, which installs
Chromium, redis-server and PostgreSQL first) a skipped test fails the run, so a browser,
server or extra that went missing cannot silently turn its tests off.

Two skips stay allowed even then: no CUDA device (the CPU path of the same code is tested
everywhere), and the shared ATLAS.yaml not lying beside the checkout (the packaged ATLAS
data the checks use is tested on its own).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

_ALLOWED = ("CUDA", "ATLAS.yaml")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                               ) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.skipped and os.environ.get("BASTION_TEST_STRICT") == "1"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    if any(word in reason for word in _ALLOWED):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under BASTION_TEST_STRICT=1: {reason}"
