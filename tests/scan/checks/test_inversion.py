"""The inversion check: class reconstructions and optional attribute inference."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from bastion.attacks.inference import AttributeResult, ReconstructionQuality
from bastion.data.dataset import Dataset
from bastion.models import as_classifier
from bastion.models.sklearn import SklearnClassifier
from bastion.report.finding import Severity
from bastion.scan.check import CHECKS, ScanContext, Target
from bastion.scan.checks.inversion import Inversion, attribute_severity, inversion_severity

ATLAS = Path("/work/shared/reference/ATLAS.yaml")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> tuple[Dataset, Dataset]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    return Dataset(x=x[:900], y=y[:900]), Dataset(x=x[900:], y=y[900:])


def test_registered_and_mapped_to_ids_that_exist() -> None:
    assert CHECKS.get("inversion") is Inversion
    if ATLAS.exists():
        ids = set(re.findall(r"id: (AML\.T[0-9.]+)", ATLAS.read_text()))
        assert set(Inversion.atlas) <= ids
    assert Inversion.owasp == ("ML03",)


def test_softmax_regression_gives_away_its_classes(digits: tuple[Dataset, Dataset]) -> None:
    train, test = digits
    model = as_classifier(LogisticRegression(max_iter=500).fit(train.x, train.y))
    (finding,) = Inversion().run(Target(model=model, train=train, test=test), ScanContext())
    metrics = {m.name: m.value for m in finding.metrics}
    assert finding.severity == Severity.HIGH
    assert metrics["identification_rate"] == 1.0 and metrics["queries"] == 0
    assert finding.evidence["white_box"] is True
    assert len(finding.charts[0].series[0].y) == 10


def test_black_box_model_is_inverted_through_counted_queries(
        digits: tuple[Dataset, Dataset]) -> None:
    train, test = digits
    model = SklearnClassifier(LogisticRegression(max_iter=500).fit(train.x, train.y))
    (finding,) = Inversion().run(Target(model=model, train=train, test=test), ScanContext())
    metrics = {m.name: m.value for m in finding.metrics}
    assert finding.evidence["white_box"] is False
    assert metrics["queries"] == model.n_queries > 0
    assert finding.severity >= Severity.MEDIUM


def test_model_trained_on_noise_is_not_flagged(digits: tuple[Dataset, Dataset]) -> None:
    train, test = digits
    assert train.y is not None
    noise = np.random.default_rng(0).permutation(train.y)
    model = as_classifier(LogisticRegression(max_iter=500).fit(train.x, noise))
    (finding,) = Inversion().run(Target(model=model, train=train, test=test), ScanContext())
    assert finding.severity <= Severity.LOW


def test_sensitive_column_adds_an_attribute_finding() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    x[:, 3] = rng.integers(0, 2, 600)
    y = (x[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(int)
    flip = rng.random(600) < 0.3
    y[flip] = 1 - y[flip]
    names = ("a", "b", "c", "sex")
    train = Dataset(x=x[:300], y=y[:300], feature_names=names, kind="tabular")
    test = Dataset(x=x[300:], y=y[300:], feature_names=names, kind="tabular")
    est = RandomForestClassifier(n_estimators=100, random_state=0).fit(train.x, train.y)
    target = Target(model=SklearnClassifier(est, bounds=(-10, 10)), train=train, test=test)
    ctx = ScanContext(options={"sensitive_column": "sex"}, profile="quick")
    findings = Inversion().run(target, ctx)
    attribute = next(f for f in findings if f.id == "inversion/attribute-sex")
    assert attribute.severity == Severity.HIGH
    assert {m.name for m in attribute.metrics} >= {"advantage", "imputation_accuracy"}


def _quality(rate: float, cosine: float, n: int = 10) -> ReconstructionQuality:
    k = round(rate * n)
    return ReconstructionQuality(cosine=np.full(n, cosine),
                                 identified=np.arange(n) < k, mse=np.zeros(n))


@pytest.mark.parametrize(("rate", "cosine", "expected"), [
    (1.0, 0.5, Severity.HIGH),
    (1.0, 0.2, Severity.MEDIUM),   # identifiable but faint
    (0.8, 0.5, Severity.HIGH),     # lift (0.8 - 0.1) / 0.9 = 0.78
    (0.7, 0.5, Severity.MEDIUM),   # lift 0.67, near miss
    (0.3, 0.5, Severity.LOW),      # lift 0.22
    (0.2, 0.5, Severity.INFO),     # lift 0.11
])
def test_inversion_severity(rate: float, cosine: float, expected: Severity) -> None:
    assert inversion_severity(_quality(rate, cosine), 10) == expected


@pytest.mark.parametrize(("attack", "baseline", "expected"), [
    (0.85, 0.55, Severity.HIGH), (0.70, 0.55, Severity.MEDIUM), (0.61, 0.55, Severity.LOW),
    (0.58, 0.55, Severity.INFO), (0.50, 0.55, Severity.INFO),
])
def test_attribute_severity(attack: float, baseline: float, expected: Severity) -> None:
    base = AttributeResult(column="c", attack_accuracy=attack, baseline_accuracy=baseline,
                           majority_accuracy=0.5, n_records=10, n_queries=20)
    assert attribute_severity(base) == expected
