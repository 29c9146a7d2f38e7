"""The ``pii`` check: the shared contract, a training CSV with known identifiers, and
feature names that announce identifiers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bastion.data.dataset import Dataset
from bastion.scan.check import ScanContext, Target
from bastion.scan.checks.pii import PiiCheck
from bastion.testing.checks import check_check


def test_contract() -> None:
    check_check(PiiCheck)


def test_training_csv_findings(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("email,income,label\nj.smith@example.com,10,0\nmj@example.org,12,1\n")
    train = Dataset(x=np.zeros((2, 1)), y=np.array([0, 1]), kind="tabular",
                    feature_names=("income",), path=path)  # fmt: skip
    found = PiiCheck().run(Target(train=train), ScanContext())
    assert [f.id for f in found] == ["pii/email-address"]
    assert found[0].metrics[0].value == 2
    assert "j.smith@example.com" not in found[0].model_dump_json()


def test_feature_names_alone(tmp_path: Path) -> None:
    train = Dataset(x=np.zeros((2, 3)), kind="tabular", feature_names=("ssn", "dob", "x1"))
    check = PiiCheck()
    assert check.applies(Target(train=train))
    (finding,) = check.run(Target(train=train), ScanContext())
    assert finding.evidence["features"] == {"ssn": "US_SSN", "dob": "DATE_TIME"}
    assert not check.applies(Target(train=Dataset(x=np.zeros((2, 1)), feature_names=("x1",))))


def test_text_columns_without_a_model_are_audited_as_a_file(tmp_path: Path) -> None:
    from bastion.scan.inputs import load_targets
    from bastion.scan.runner import run_scan, select_checks

    path = tmp_path / "patients.csv"
    path.write_text("name,email,diagnosis\nJohn Smith,j.smith@example.com,flu\n"
                    "Mary Jones,mj@example.org,cold\n")
    (named,), _ = load_targets(model=None, data=path, test=None, label="diagnosis")
    assert named.target.train is None and named.target.train_file == path
    report = run_scan([named], checks=select_checks(["pii", "data-quality"]),
                      ctx=ScanContext(), command="scan")
    assert "pii/email-address" in {f.id.split(": ")[-1] for f in report.findings}
    assert [s.check for s in report.skipped] == ["data-quality"]
