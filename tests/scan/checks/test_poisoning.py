import numpy as np
import pytest

from bastion.attacks.poisoning import BadNets, LabelFlip
from bastion.data.dataset import Dataset
from bastion.data.demo import demo_breast_cancer, demo_digits
from bastion.errors import InvalidDataError
from bastion.report.finding import Severity
from bastion.scan.check import ScanContext, Target
from bastion.scan.checks.poisoning import Poisoning, audit_findings
from bastion.testing import check_check


def test_passes_the_check_contract() -> None:
    check_check(Poisoning)


@pytest.mark.slow  # ~13 s: confident learning fits 3 models on 1347 digit rows
def test_backdoored_digits_give_a_high_finding_on_the_target_class() -> None:
    train, _ = demo_digits(0)
    assert train.y is not None
    res = BadNets(target=0, fraction=0.05, patch_size=2)(train.x, train.y,
                                                          generator=np.random.default_rng(0))
    data = Dataset(x=res.x, y=res.y, kind="image", class_names=train.class_names)
    found = Poisoning().run(Target(train=data), ScanContext(seed=0))
    high = [f for f in found if f.severity is Severity.HIGH]
    assert [f.id for f in high] == ["poisoning/backdoor-cluster-0"]
    rows = {r["row"] for r in high[0].evidence["rows"]}
    assert rows <= set(res.indices.tolist()) and len(rows) == min(50, len(res.indices))
    assert {"ML02", "ML10"} <= set(high[0].owasp) and "AML.T0020" in high[0].atlas


def test_label_flips_give_a_medium_finding() -> None:
    train, _ = demo_breast_cancer(0)
    assert train.y is not None
    res = LabelFlip(fraction=0.05)(train.x, train.y, generator=np.random.default_rng(0))
    found = Poisoning().run(Target(train=Dataset(x=res.x, y=res.y, kind="tabular")),
                            ScanContext(seed=0))
    labels = next(f for f in found if f.id == "poisoning/label-errors")
    assert labels.severity is Severity.MEDIUM
    hits = {r["row"] for r in labels.evidence["rows"]} & set(res.indices.tolist())
    assert len(hits) >= 0.6 * len(res.indices)


def test_clean_data_gives_no_finding_above_low() -> None:
    train, _ = demo_breast_cancer(0)
    found = Poisoning().run(Target(train=train), ScanContext(seed=0))
    assert all(f.severity in (Severity.INFO, Severity.LOW) for f in found)
    summary = next(f for f in found if f.id == "poisoning/summary")
    assert summary.charts and set(summary.evidence["per_class"]) == set(train.class_names)


@pytest.mark.parametrize("y", [None, np.zeros(10, dtype=int)])
def test_does_not_apply_without_two_classes(y: np.ndarray | None) -> None:
    assert not Poisoning().applies(Target(train=Dataset(x=np.zeros((10, 2)), y=y)))


def test_findings_need_the_audited_data() -> None:
    train, _ = demo_breast_cancer(0)
    from bastion.detection.poisoning.audit import audit

    with pytest.raises(InvalidDataError):
        audit_findings(audit(train), Dataset(x=train.x[:5], y=None))
