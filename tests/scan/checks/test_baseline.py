from dataclasses import dataclass, field

import numpy as np
import pytest

from bastion.data import Dataset
from bastion.report import Severity
from bastion.scan import ScanContext, Target
from bastion.scan.checks.baseline import ModelBaseline, expected_calibration_error


@dataclass
class _Fixed:
    """A classifier that returns precomputed probabilities."""

    proba: np.ndarray
    n_classes: int = 2
    input_shape: tuple[int, ...] = (1,)
    bounds: tuple[float, float] = (0.0, 1.0)
    n_queries: int = 0
    calls: list[int] = field(default_factory=list)

    def reset_queries(self) -> None:
        self.n_queries = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.n_queries += len(x)
        return self.proba


def test_ece_matches_a_hand_computed_case() -> None:
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    ece, *_ = expected_calibration_error(proba, y)
    # bin 0.9: acc 0.5 vs conf 0.9 (weight 1/2); bin 0.6: acc 1.0 vs conf 0.6 (weight 1/2)
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_perfect_calibrated_model_is_info_and_metrics_are_exact() -> None:
    y = np.array([0, 1] * 50)
    proba = np.eye(2)[y]
    target = Target(model=_Fixed(proba), test=Dataset(x=np.zeros((100, 1)), y=y))
    (f,) = ModelBaseline().run(target, ScanContext())
    metrics = {m.name: m.value for m in f.metrics}
    assert metrics["accuracy"] == 1.0 and metrics["expected calibration error"] == 0.0
    assert f.severity is Severity.INFO and "held-out" in f.description


def test_a_failing_class_and_overconfidence_raise_severity() -> None:
    y = np.array([0] * 50 + [1] * 50)
    proba = np.tile([0.99, 0.01], (100, 1))  # always class 0, very sure
    target = Target(model=_Fixed(proba), train=Dataset(x=np.zeros((100, 1)), y=y))
    (f,) = ModelBaseline().run(target, ScanContext())
    metrics = {m.name: m.value for m in f.metrics}
    assert metrics["worst class recall"] == 0.0 and metrics["balanced accuracy"] == 0.5
    assert f.severity is Severity.MEDIUM and "optimistic" in f.description
