"""The robustness check: curve, per-class numbers, severity table, profiles, black-box fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bastion.data import Dataset
from bastion.models import SklearnClassifier, TorchClassifier, as_classifier
from bastion.report.finding import Severity
from bastion.scan.check import CHECKS, ScanContext, Target
from bastion.scan.checks.robustness import Robustness, attacks_for, severity_for


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target


@pytest.fixture(scope="module")
def cnn_target(digits) -> Target:
    x, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x[:1200]), torch.as_tensor(y[:1200])
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    model = TorchClassifier(net, input_shape=(1, 8, 8))
    return Target(model=model, test=Dataset(x=x[1200:], y=y[1200:], kind="image"))


@pytest.mark.parametrize(
    ("ratio", "severity"),
    [(0.0, Severity.CRITICAL), (0.099, Severity.CRITICAL), (0.1, Severity.HIGH),
     (0.399, Severity.HIGH), (0.4, Severity.MEDIUM), (0.69, Severity.MEDIUM),
     (0.7, Severity.LOW), (0.899, Severity.LOW), (0.9, Severity.INFO), (1.0, Severity.INFO)],
)
def test_severity_thresholds(ratio, severity) -> None:
    assert severity_for(ratio) is severity


def test_registered_with_owasp_and_atlas_ids() -> None:
    check = CHECKS.get("robustness")
    assert check is Robustness
    assert check.owasp == ("ML01",) and check.atlas == ("AML.T0015", "AML.T0043")


def test_needs_a_model_and_labels(cnn_target) -> None:
    check = Robustness()
    assert check.applies(cnn_target)
    assert not check.applies(Target(model=cnn_target.model))
    unlabeled = Target(model=cnn_target.model, test=Dataset(x=cnn_target.test.x))
    assert not check.applies(unlabeled)


def test_quick_profile_reports_a_monotone_curve_and_per_class_numbers(cnn_target) -> None:
    events: list[object] = []
    [finding] = Robustness().run(cnn_target, ScanContext(seed=0, progress=events.append))
    curve = finding.evidence["robust_accuracy"]
    clean = finding.metrics[0].value
    assert clean > 0.8
    assert all(a >= b for a, b in zip([clean, *curve], curve, strict=False))
    assert curve[-1] < clean  # the largest budget fools something
    per_class = finding.evidence["per_class_robust_accuracy"]
    assert sorted(per_class) == [str(c) for c in range(10)]
    ratio = finding.metrics[2].value
    assert finding.severity is severity_for(ratio)
    assert finding.charts[0].kind == "line" and finding.charts[1].kind == "bar"
    assert finding.evidence["attacks"] == ["FGSM", "PGD"]
    assert events and events[-1].done


def test_same_seed_same_finding(cnn_target) -> None:
    a = Robustness().run(cnn_target, ScanContext(seed=3))
    b = Robustness().run(cnn_target, ScanContext(seed=3))
    assert a == b


def test_profiles_choose_stronger_attacks(cnn_target) -> None:
    model = cnn_target.model
    names = {p: [type(a).__name__ for a in attacks_for(p, model, 0.1, "linf")]
             for p in ("quick", "standard", "thorough")}
    assert names == {"quick": ["FGSM", "PGD"], "standard": ["APGDCE", "APGDT"],
                     "thorough": ["AutoAttack"]}


def test_user_eps_grid_and_a_large_budget_fool_everything(cnn_target) -> None:
    [finding] = Robustness().run(cnn_target, ScanContext(options={"eps": [0.9, 0.05]}))
    assert finding.evidence["eps"] == [0.05, 0.9]
    assert finding.evidence["reference_eps"] == 0.05  # the grid point nearest 8/255
    assert finding.evidence["robust_accuracy"][-1] == 0.0
    [at_large] = Robustness().run(cnn_target, ScanContext(options={"eps": [0.9]}))
    assert at_large.severity is Severity.CRITICAL


def test_models_without_gradients_fall_back_to_square(digits) -> None:
    x, y = digits
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(
        x[:1200].reshape(1200, -1), y[:1200])
    model = SklearnClassifier(forest, input_shape=(1, 8, 8))
    target = Target(model=model, test=Dataset(x=x[1200:1300], y=y[1200:1300]))
    [finding] = Robustness().run(target, ScanContext(options={"eps": [0.3]}))
    assert finding.evidence["attacks"] == ["Square"]
    assert finding.evidence["robust_accuracy"][0] < finding.metrics[0].value


def test_linear_sklearn_model_is_attacked_through_its_torch_twin(digits) -> None:
    x, y = digits
    flat = x.reshape(len(x), -1)
    clf = LogisticRegression(max_iter=500).fit(flat[:1200], y[:1200])
    model = as_classifier(clf)
    target = Target(model=model, test=Dataset(x=flat[1200:], y=y[1200:], kind="tabular"))
    [finding] = Robustness().run(target, ScanContext())
    assert finding.evidence["attacks"] == ["FGSM", "PGD"]


def test_standard_profile_reports_minimal_perturbations(cnn_target) -> None:
    small = Target(model=cnn_target.model,
                   test=Dataset(x=cnn_target.test.x[:60], y=cnn_target.test.y[:60]))
    ctx = ScanContext(profile="standard", options={"eps": [0.1]})
    [finding] = Robustness().run(small, ctx)
    assert finding.evidence["attacks"][0] == "APGDCE"
    median = next(m for m in finding.metrics if m.name == "median_minimal_perturbation")
    q = finding.evidence["minimal_perturbation_quantiles"]
    assert q["0.1"] <= median.value == q["0.5"] <= q["0.9"]
    assert finding.charts[-1].kind == "hist"


def test_surrogate_option_adds_the_transfer_rate(cnn_target, digits) -> None:
    x, y = digits
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=5e-2)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:1200])),
                                          torch.as_tensor(y[:1200])).backward()
        opt.step()
    surrogate = TorchClassifier(net, input_shape=(1, 8, 8))
    ctx = ScanContext(options={"eps": [0.3], "surrogate": surrogate})
    [finding] = Robustness().run(cnn_target, ctx)
    rate = finding.evidence["transfer_rate"]
    assert 0.1 < rate <= 1.0
    assert any(m.name == "transfer_rate" and m.value == rate for m in finding.metrics)
