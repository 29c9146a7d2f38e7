from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.data import Dataset
from bastion.errors import InvalidDataError
from bastion.report import Finding, Severity
from bastion.scan import ScanContext, Target
from bastion.scan.checks.baseline import ModelBaseline, expected_calibration_error


@dataclass
class _Fixed:
    """A classifier whose inputs are row numbers into precomputed probabilities."""

    proba: np.ndarray
    n_classes: int = 2
    input_shape: tuple[int, ...] = (1,)
    bounds: tuple[float, float] = (0.0, 1.0)
    n_queries: int = 0
    batches: list[int] = field(default_factory=list)

    def reset_queries(self) -> None:
        self.n_queries = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.n_queries += len(x)
        self.batches.append(len(x))
        rows: np.ndarray = self.proba[x[:, 0].astype(int)]
        return rows


def _rows(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32)[:, None]


def _run(proba: np.ndarray, y: np.ndarray, *, held_out: bool = True) -> Finding:
    ds = Dataset(x=_rows(len(y)), y=y)
    target = Target(model=_Fixed(proba), test=ds) if held_out else \
        Target(model=_Fixed(proba), train=ds)
    (f,) = ModelBaseline().run(target, ScanContext())
    return f


def _metrics(f: Finding) -> dict[str, float]:
    return {m.name: m.value for m in f.metrics}


def test_ece_matches_a_hand_computed_case() -> None:
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    ece, conf, acc, counts = expected_calibration_error(proba, y)
    # bin 0.9: acc 0.5 vs conf 0.9 (weight 1/2); bin 0.6: acc 1.0 vs conf 0.6 (weight 1/2)
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    used = counts > 0
    assert counts[used].tolist() == [2, 2] and len(counts) == 15
    assert conf[used] == pytest.approx([0.6, 0.9]) and acc[used] == pytest.approx([1.0, 0.5])


def test_ece_against_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=500)
    y = rng.integers(0, 4, 500)
    conf, pred = proba.max(axis=1), proba.argmax(axis=1)
    naive = 0.0
    for lo, hi in zip(np.linspace(0, 1, 16)[:-1], np.linspace(0, 1, 16)[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            naive += inside.mean() * abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
    assert expected_calibration_error(proba, y)[0] == pytest.approx(naive)


def test_perfect_calibrated_model_is_info_and_metrics_are_exact() -> None:
    y = np.array([0, 1] * 50)
    f = _run(np.eye(2)[y], y)
    metrics = _metrics(f)
    assert metrics["accuracy"] == 1.0 and metrics["expected calibration error"] == 0.0
    assert f.severity is Severity.INFO and "held-out" in f.description
    assert f.evidence["top_confusions"] == []
    assert [c.kind for c in f.charts] == ["bar", "line"]


@pytest.mark.parametrize(("confidence", "severity"), [(0.91, Severity.INFO), (0.89, Severity.LOW),
                                                      (0.81, Severity.LOW),
                                                      (0.79, Severity.MEDIUM)])
def test_ece_thresholds(confidence: float, severity: Severity) -> None:
    y = np.array([0, 1] * 50)
    proba = np.where(np.eye(2)[y] == 1, confidence, 1 - confidence)  # always right, underconfident
    f = _run(proba, y)
    assert _metrics(f)["expected calibration error"] == pytest.approx(1 - confidence)
    assert f.severity is severity


@pytest.mark.parametrize(("recall", "severity"), [(0.72, Severity.INFO), (0.68, Severity.LOW),
                                                  (0.42, Severity.LOW), (0.38, Severity.MEDIUM)])
def test_weak_class_thresholds(recall: float, severity: Severity) -> None:
    y = np.r_[np.zeros(100, int), np.ones(100, int)]
    proba = np.eye(2)[y]
    proba[100 + round(recall * 100):] = 0.5  # a tie: argmax says class 0, wrong
    f = _run(proba, y)
    metrics = _metrics(f)
    assert metrics["worst class recall"] == pytest.approx(recall)
    assert metrics["balanced accuracy"] == pytest.approx((1 + recall) / 2)
    assert f.severity is severity
    assert f.charts[0].series[0].y == pytest.approx([1.0, recall])
    misses = 100 - round(recall * 100)
    assert f.evidence["top_confusions"] == [{"true": "1", "predicted": "0", "count": misses}]


def test_no_better_than_the_majority_class_is_medium_and_train_is_optimistic() -> None:
    y = np.r_[np.zeros(90, int), np.ones(10, int)]
    proba = np.tile([0.9, 0.1], (100, 1))  # always class 0, and calibrated on this data
    f = _run(proba, y, held_out=False)
    metrics = _metrics(f)
    assert metrics["accuracy"] == metrics["majority-class accuracy"] == 0.9
    assert f.severity is Severity.MEDIUM and "optimistic" in f.description


def test_predictions_are_batched() -> None:
    y = np.arange(2500) % 2
    model = _Fixed(np.eye(2)[y])
    ModelBaseline(batch_size=1000).run(Target(model=model, test=Dataset(x=_rows(2500), y=y)),
                                       ScanContext())
    assert model.batches == [1000, 1000, 500] and model.n_queries == 2500


def test_labels_beyond_the_model_classes_are_an_input_error() -> None:
    y = np.array([0, 1, 2])
    with pytest.raises(InvalidDataError, match="label 2"):
        _run(np.eye(2)[[0, 1, 1]], y)


@settings(derandomize=True, max_examples=50, deadline=None)
@given(n=st.integers(1, 80), k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_ece_is_a_weighted_gap_between_zero_and_one(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    y = rng.integers(0, k, n)
    ece, conf, acc, counts = expected_calibration_error(proba, y)
    assert 0.0 <= ece <= 1.0 and counts.sum() == n
    used = counts > 0
    assert np.all((conf[used] >= 1 / k - 1e-9) & (conf[used] <= 1)) and np.all(acc[used] <= 1)


def test_top_confusions_are_ordered_worst_first() -> None:
    y = np.repeat([0, 1, 2], 10)
    pred = y.copy()
    pred[20:26] = 1  # six 2s read as 1
    pred[0:3] = 2    # three 0s read as 2
    model = _Fixed(np.eye(3)[pred], n_classes=3)
    (f,) = ModelBaseline().run(Target(model=model, test=Dataset(x=_rows(30), y=y)),
                               ScanContext())
    assert f.evidence["top_confusions"] == [{"true": "2", "predicted": "1", "count": 6},
                                            {"true": "0", "predicted": "2", "count": 3}]
