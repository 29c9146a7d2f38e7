"""The extraction check: severity from fidelity and gain, chart, mapping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from bastion.data.dataset import Dataset
from bastion.errors import RemoteModelError
from bastion.models.sklearn import SklearnClassifier
from bastion.report.finding import Severity
from bastion.scan.check import CHECKS, ScanContext, Target
from bastion.scan.checks.extraction import Extraction, severity_of

ATLAS = Path("/work/shared/reference/ATLAS.yaml")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _target(estimator: object) -> Target:
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    estimator.fit(x[:300], y[:300])  # type: ignore[attr-defined]
    model = SklearnClassifier(estimator, bounds=(-15.0, 15.0))
    return Target(model=model, train=Dataset(x=x[:300], y=y[:300]),
                  test=Dataset(x=x[300:], y=y[300:]))


def test_registered_and_mapped_to_ids_that_exist() -> None:
    assert CHECKS.get("extraction") is Extraction
    if ATLAS.exists():
        ids = set(re.findall(r"id: (AML\.T[0-9.]+)", ATLAS.read_text()))
        assert set(Extraction.atlas) <= ids
    assert Extraction.owasp == ("ML05",)


def test_a_linear_model_is_stolen_with_few_queries() -> None:
    target = _target(LogisticRegression(max_iter=1000))
    (finding,) = Extraction().run(target, ScanContext(seed=0))
    metrics = {m.name: m.value for m in finding.metrics}
    assert finding.severity == Severity.HIGH
    assert metrics["fidelity"] > 0.9 and metrics["queries"] <= 500
    assert {s.name for s in finding.charts[0].series} == {"knockoff", "random"}
    assert "Rate-limit" in finding.recommendation
    assert target.model is not None and target.model.n_queries > 0


def test_a_constant_model_teaches_nothing() -> None:
    (finding,) = Extraction().run(_target(DummyClassifier()), ScanContext(seed=0))
    assert finding.severity == Severity.INFO
    assert finding.title.startswith("No useful copy")


class _Gatekeeper:
    """An endpoint that answers like ``model`` until ``limit`` queries, then refuses."""

    def __init__(self, model: SklearnClassifier, limit: int, status: int) -> None:
        self.model, self.limit, self.status = model, limit, status
        self.n_classes, self.input_shape, self.bounds = (
            model.n_classes, model.input_shape, model.bounds)
        self.n_queries = 0

    def reset_queries(self) -> None:
        self.n_queries = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.n_queries + len(x) > self.limit:
            raise RemoteModelError("refused", status=self.status)
        self.n_queries += len(x)
        return self.model.predict_proba(x)


@pytest.mark.parametrize(("status", "word"), [(403, "blocked"), (429, "rate-limited")])
def test_an_endpoint_that_refuses_the_attack_is_reported_as_defending(
        status: int, word: str) -> None:
    target = _target(LogisticRegression(max_iter=1000))
    assert isinstance(target.model, SklearnClassifier)
    target.model = _Gatekeeper(target.model, limit=150, status=status)
    (finding,) = Extraction().run(target, ScanContext(seed=0))
    assert finding.id == "extraction/refused" and finding.severity == Severity.INFO
    assert word in finding.title
    assert 0 < finding.metrics[0].value <= 150


def test_other_remote_errors_still_fail_the_check() -> None:
    target = _target(LogisticRegression(max_iter=1000))
    assert isinstance(target.model, SklearnClassifier)
    target.model = _Gatekeeper(target.model, limit=150, status=500)
    with pytest.raises(RemoteModelError):
        Extraction().run(target, ScanContext(seed=0))


def test_needs_some_data() -> None:
    model = _target(LogisticRegression(max_iter=1000)).model
    assert not Extraction().applies(Target(model=model))


@pytest.mark.parametrize(("fidelity", "baseline", "expected"), [
    (0.95, 0.50, Severity.HIGH),
    (0.89, 0.50, Severity.MEDIUM),      # near miss of high on fidelity
    (0.95, 0.94, Severity.LOW),         # high fidelity but little gain over constant
    (0.80, 0.60, Severity.MEDIUM),
    (0.74, 0.50, Severity.LOW),
    (0.54, 0.50, Severity.INFO),
    (1.00, 1.00, Severity.INFO),        # constant target
])
def test_severity_thresholds(fidelity: float, baseline: float, expected: Severity) -> None:
    assert severity_of(fidelity, baseline) == expected
