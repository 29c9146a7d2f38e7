import numpy as np
import pytest

from bastion.data import Dataset
from bastion.report import Severity
from bastion.scan import ScanContext, Target
from bastion.scan.checks.data_quality import DataQuality


def _clean(n: int = 200, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(x=rng.normal(size=(n, 5)).astype(np.float32),
                   y=np.arange(n) % 2, kind="tabular")


def _by_slug(target: Target) -> dict[str, object]:
    return {f.id.split("/")[1]: f for f in DataQuality().run(target, ScanContext(seed=0))}


def test_clean_data_raises_nothing_above_info() -> None:
    found = _by_slug(Target(train=_clean(), test=_clean(seed=1)))
    assert all(f.severity <= Severity.INFO for f in found.values())  # type: ignore[attr-defined]
    assert "train-test-overlap" not in found and "conflicting-labels" not in found


def test_planted_problems_are_found_with_exact_counts() -> None:
    train = _clean()
    x, y = train.x.copy(), train.y.copy()
    x[5] = x[4]            # a conflicting duplicate (labels 0 and 1)
    x[7, 2] = np.nan        # a NaN
    x[:, 3] = 1.0           # a constant feature
    test = _clean(seed=1)
    tx = test.x.copy()
    tx[:30] = x[100:130]    # 30 leaked rows: 15 % of the test set
    found = _by_slug(Target(train=Dataset(x=x, y=y, kind="tabular"),
                            test=Dataset(x=tx, y=test.y, kind="tabular")))
    assert found["conflicting-labels"].evidence["groups"] == [[4, 5]]
    assert found["non-finite"].evidence["rows"] == [7]
    assert found["constant-features"].evidence["features"] == ["3"]
    leak = found["train-test-overlap"]
    assert leak.evidence["test_rows"] == list(range(20))
    assert leak.metrics[0].value == 30 and leak.severity is Severity.HIGH


@pytest.mark.parametrize(("minority", "severity"), [(100, Severity.INFO), (30, Severity.LOW),
                                                    (9, Severity.MEDIUM)])
def test_imbalance_thresholds(minority: int, severity: Severity) -> None:
    n = 100 + minority
    ds = Dataset(x=np.random.default_rng(0).normal(size=(n, 3)),
                 y=np.r_[np.zeros(100, int), np.ones(minority, int)], kind="tabular")
    assert _by_slug(Target(train=ds))["class-balance"].severity is severity


def test_an_outlier_cluster_is_flagged_and_ranked_first() -> None:
    ds = _clean(400)
    x = ds.x.copy()
    x[:40] += 12.0
    found = _by_slug(Target(train=Dataset(x=x, y=ds.y, kind="tabular")))
    out = found["outliers"]
    assert out.severity is Severity.LOW
    assert set(out.evidence["most_anomalous_rows"]) <= set(range(40))


def test_images_outside_unit_range() -> None:
    x = np.random.default_rng(0).random((50, 1, 4, 4)).astype(np.float32)
    x[0, 0, 0, 0] = 3.0
    found = _by_slug(Target(train=Dataset(x=x, y=np.arange(50) % 2, kind="image")))
    assert found["image-range"].metrics[0].value == 1


def test_drifted_test_feature_is_flagged_but_iid_noise_is_not() -> None:
    train, test = _clean(), _clean(seed=1)
    tx = test.x.copy()
    tx[:, 1] += 5.0
    found = _by_slug(Target(train=train, test=Dataset(x=tx, y=test.y, kind="tabular")))
    assert found["test-out-of-range"].evidence["features"] == ["1"]
