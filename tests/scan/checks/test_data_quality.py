from dataclasses import dataclass

import numpy as np
import pytest

from bastion.data import Dataset
from bastion.report import Finding, Severity
from bastion.scan import ScanContext, Target
from bastion.scan.checks.data_quality import DataQuality


def _clean(n: int = 200, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(x=rng.normal(size=(n, 5)).astype(np.float32),
                   y=np.arange(n) % 2, kind="tabular",
                   feature_names=tuple(f"f{i}" for i in range(5)))


def _with(ds: Dataset, x: np.ndarray, y: np.ndarray | None = None) -> Dataset:
    return Dataset(x=x, y=ds.y if y is None else y, kind=ds.kind, feature_names=ds.feature_names)


def _by_slug(target: Target, seed: int = 0) -> dict[str, Finding]:
    return {f.id.split("/")[1]: f for f in DataQuality().run(target, ScanContext(seed=seed))}


def test_clean_data_raises_nothing_above_info() -> None:
    found = _by_slug(Target(train=_clean(), test=_clean(seed=1)))
    assert all(f.severity <= Severity.INFO for f in found.values())
    assert set(found) == {"class-balance", "outliers"}


def test_planted_problems_are_found_with_exact_counts() -> None:
    train = _clean()
    x = train.x.copy()
    x[5] = x[4]            # a conflicting duplicate (labels 0 and 1)
    x[9] = x[7]            # a plain duplicate (labels 1 and 1)
    x[7, 2] = x[9, 2] = np.nan  # NaN in two rows of feature f2 ...
    x[11, 0] = np.inf      # ... and inf in one row of f0
    x[:, 3] = 1.0          # a constant feature
    test = _clean(seed=1)
    tx = test.x.copy()
    tx[:30] = x[100:130]   # 30 leaked rows: 15 % of the test set
    tx[40, 1] = np.nan     # NaN in the test data is reported on its own
    found = _by_slug(Target(train=_with(train, x), test=_with(test, tx)))
    assert found["conflicting-labels-train"].evidence["groups"] == [[4, 5]]
    assert found["duplicates-train"].metrics[0].value == 2  # rows 5 and 9
    assert found["duplicates-train"].severity is Severity.INFO  # 1 % < 5 %
    nan = found["non-finite-train"]
    assert nan.evidence["rows"] == [7, 9, 11]
    assert nan.evidence["per_feature"] == {"f2": 2, "f0": 1}
    assert found["non-finite-test"].evidence["rows"] == [40]
    assert found["constant-features"].evidence["features"] == ["f3"]
    leak = found["train-test-overlap"]
    assert leak.evidence["test_rows"] == list(range(20))  # the first 20 of 30
    assert leak.evidence["train_rows"] == list(range(100, 120))
    assert leak.metrics[0].value == 30 and leak.severity is Severity.HIGH
    assert leak.metrics[2].value == 0  # train and test rows alternate labels alike


def test_leakage_survives_a_dtype_change_and_counts_relabelled_rows() -> None:
    train, test = _clean(), _clean(seed=1)
    x = train.x.copy()
    x[20, 0] = 0.0
    tx = test.x.astype(np.float64)
    ty = np.array(test.y)
    tx[:3], ty[:3] = x[10:13], 1 - np.arange(10, 13) % 2  # same values as float64, relabelled
    tx[3], ty[3] = x[20], 0  # same row and label, with -0.0 where train has 0.0
    tx[3, 0] = -0.0
    found = _by_slug(Target(train=_with(train, x), test=_with(test, tx, ty)))
    leak = found["train-test-overlap"]
    assert leak.evidence["test_rows"] == [0, 1, 2, 3]
    assert leak.metrics[2].value == 3 and leak.severity is Severity.MEDIUM  # 2 % of test


def test_near_misses_do_not_fire() -> None:
    train, test = _clean(), _clean(seed=1)
    x, tx = train.x.copy(), test.x.copy()
    x[5] = np.nextafter(x[4], np.float32(np.inf))  # one ulp from row 4: not a duplicate
    tx[:30] = np.nextafter(x[100:130], np.float32(np.inf))  # nearly leaked, not identical
    x[:, 3] = 1.0
    x[0, 3] = 1.0 + 1e-6  # almost constant, still varies
    found = _by_slug(Target(train=_with(train, x), test=_with(test, tx)))
    for slug in ("duplicates-train", "conflicting-labels-train", "train-test-overlap",
                 "constant-features", "non-finite-train"):
        assert slug not in found


def test_many_duplicates_become_low() -> None:
    ds = _clean()
    x = ds.x.copy()
    x[100:110] = x[0]  # 10 repeats of row 0 (same label 0) = 5 % of 200 rows
    y = np.where(np.arange(200) >= 100, 0, np.arange(200) % 2)
    found = _by_slug(Target(train=_with(ds, x, y)))
    assert found["duplicates-train"].severity is Severity.LOW
    assert found["duplicates-train"].evidence["groups"] == [[0, 100, 101, 102, 103, 104, 105,
                                                             106, 107, 108]]


@pytest.mark.parametrize(("minority", "severity"), [(100, Severity.INFO), (34, Severity.INFO),
                                                    (33, Severity.LOW), (11, Severity.LOW),
                                                    (10, Severity.MEDIUM)])
def test_imbalance_thresholds(minority: int, severity: Severity) -> None:
    n = 100 + minority
    ds = Dataset(x=np.random.default_rng(0).normal(size=(n, 3)),
                 y=np.r_[np.zeros(100, int), np.ones(minority, int)], kind="tabular",
                 class_names=("no", "yes"))
    balance = _by_slug(Target(train=ds))["class-balance"]
    assert balance.severity is severity
    assert balance.evidence["counts"] == {"no": 100, "yes": minority}
    assert balance.charts[0].kind == "bar" and balance.charts[0].series[0].y == [100, minority]


def test_test_set_missing_a_class_and_its_counts_in_the_chart() -> None:
    train = Dataset(x=np.random.default_rng(0).normal(size=(90, 2)), y=np.arange(90) % 3)
    test = Dataset(x=np.random.default_rng(1).normal(size=(20, 2)), y=np.arange(20) % 2)
    found = _by_slug(Target(train=train, test=test))
    assert found["test-missing-classes"].evidence["classes"] == ["2"]
    assert [s.name for s in found["class-balance"].charts[0].series] == ["train", "test"]


def test_an_outlier_cluster_is_flagged_and_ranked_first() -> None:
    ds = _clean(400)
    x = ds.x.copy()
    x[:40] += 12.0  # a 10 % cluster far from the rest
    out = _by_slug(Target(train=_with(ds, x)))["outliers"]
    assert out.severity is Severity.LOW
    assert set(out.evidence["most_anomalous_rows"]) <= set(range(40))
    assert out.metrics[0].value >= 40 and out.metrics[1].value == pytest.approx(
        out.metrics[0].value / 400)
    assert out.charts[0].kind == "hist" and len(out.charts[0].series[0].y) == 400


def test_outliers_are_seeded() -> None:
    ds = _clean(300)
    a = _by_slug(Target(train=ds), seed=4)["outliers"]
    b = _by_slug(Target(train=ds), seed=4)["outliers"]
    assert a.evidence == b.evidence and a.metrics == b.metrics


@dataclass
class _Bounded:
    bounds: tuple[float, float] = (-1.0, 1.0)


def test_images_outside_unit_range_or_model_bounds() -> None:
    x = np.random.default_rng(0).random((50, 1, 4, 4)).astype(np.float32)
    x[3, 0, 0, 0] = 3.0
    x[8, 0, 1, 1] = -0.5
    ds = Dataset(x=x, y=np.arange(50) % 2, kind="image")
    found = _by_slug(Target(train=ds))["image-range-train"]
    assert found.metrics[0].value == 2 and found.evidence["rows"] == [3, 8]
    with_model = _by_slug(Target(train=ds, model=_Bounded()))  # type: ignore[arg-type]
    assert with_model["image-range-train"].evidence["rows"] == [3]  # -0.5 is within [-1, 1]
    x[3, 0, 0, 0], x[8, 0, 1, 1] = 1.0, 0.0  # exactly on the bounds: a near miss
    assert "image-range-train" not in _by_slug(Target(train=ds))


def test_drifted_test_feature_is_flagged_but_iid_noise_is_not() -> None:
    train, test = _clean(), _clean(seed=1)
    tx = test.x.copy()
    tx[:, 1] += 5.0
    found = _by_slug(Target(train=train, test=_with(test, tx)))
    assert found["test-out-of-range"].evidence["features"] == ["f1"]
