"""The `supplychain` scan check (src/bastion/scan/checks/supplychain.py) in the runner."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from bastion.errors import UnreadableInputError, UnsupportedFormatError
from bastion.scan import CHECKS, ScanContext, Target
from bastion.scan.runner import NamedTarget, run_scan


def test_registered_with_owasp_and_atlas_ids() -> None:
    cls = CHECKS.get("supplychain")
    assert cls.owasp == ("ML06",)
    assert {"AML.T0010", "AML.T0010.003", "AML.T0058"} <= set(cls.atlas)


def test_applies_only_with_a_model_file(tmp_path: Path) -> None:
    instance = CHECKS.get("supplychain")()
    assert not instance.applies(Target())
    assert instance.applies(Target(model_path=tmp_path / "m.pkl"))


def test_findings_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(b"\x80\x02cposix\ngetcwd\n)R.")
    report = run_scan([NamedTarget("", Target(model_path=path))],
                      checks=[CHECKS.get("supplychain")()], ctx=ScanContext())
    assert report.errors == [] and report.metadata.checks_run == ["supplychain"]
    assert [f.severity.value for f in report.findings] == ["critical"]


def test_clean_file_has_no_findings(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    assert CHECKS.get("supplychain")().run(Target(model_path=path), ScanContext()) == []


def test_unanalysable_file_is_an_error_not_a_pass(tmp_path: Path) -> None:
    path = tmp_path / "blob.xyz"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(UnsupportedFormatError, match="not analysed"):
        CHECKS.get("supplychain")().run(Target(model_path=path), ScanContext())


def test_unreadable_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps([1]))

    real_open = os.open

    def refuse(file: str, flags: int, *args: int, **kwargs: int) -> int:
        if str(file) == str(path):  # root reads any file: refuse this one by hand
            raise PermissionError(13, "Permission denied")
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(UnreadableInputError, match="cannot read"):
        CHECKS.get("supplychain")().run(Target(model_path=path), ScanContext())
