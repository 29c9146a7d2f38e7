"""The membership check: severity thresholds, recipes, findings, charts."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bastion.attacks.inference import measure
from bastion.data.dataset import Dataset
from bastion.models.sklearn import SklearnClassifier
from bastion.models.torch import TorchClassifier
from bastion.report.finding import Severity
from bastion.scan.check import CHECKS, ScanContext, Target
from bastion.scan.checks.membership import Membership, severity_of

ATLAS = Path("/work/shared/reference/ATLAS.yaml")


def _data(n: int = 1000) -> tuple[Dataset, Dataset]:
    x, y = make_classification(n_samples=n, n_features=20, n_informative=8, n_classes=3,
                               n_clusters_per_class=1, flip_y=0.15, random_state=0)
    return Dataset(x=x[: n // 2], y=y[: n // 2]), Dataset(x=x[n // 2 :], y=y[n // 2 :])


def _sk_target(estimator: object, n: int = 1000) -> Target:
    train, test = _data(n)
    estimator.fit(train.x, train.y)  # type: ignore[attr-defined]
    return Target(model=SklearnClassifier(estimator, bounds=(-20, 20)), train=train, test=test)


def test_registered_and_mapped_to_ids_that_exist() -> None:
    assert CHECKS.get("membership") is Membership
    if ATLAS.exists():
        ids = set(re.findall(r"id: (AML\.T[0-9.]+)", ATLAS.read_text()))
        assert set(Membership.atlas) <= ids
    assert Membership.owasp == ("ML04",)


def test_needs_held_out_data() -> None:
    train, _ = _data()
    model = SklearnClassifier(LogisticRegression().fit(train.x, train.y), bounds=(-20, 20))
    assert not Membership().applies(Target(model=model, train=train))
    assert Membership().applies(Target(model=model, train=train, test=train))


def test_overfit_model_is_flagged_with_roc_chart_and_exposed_records() -> None:
    target = _sk_target(RandomForestClassifier(n_estimators=30, random_state=0))
    (finding,) = Membership().run(target, ScanContext(seed=0))
    assert finding.severity >= Severity.HIGH
    assert finding.owasp == ["ML04"] and "AML.T0024.000" in finding.atlas
    assert "DP-SGD" in finding.recommendation
    names = {s.name for s in finding.charts[0].series}
    assert {"chance", "loss-threshold", "lira-online", "rmia-offline"} <= names
    exposed = finding.evidence["most_exposed_train_indices"]
    assert exposed and all(0 <= i < 500 for i in exposed)
    metrics = {m.name: m.value for m in finding.metrics}
    assert metrics["auc"] > 0.9 and metrics["target_queries"] == 1000


def test_regularised_model_on_ample_data_shows_no_leakage() -> None:
    target = _sk_target(LogisticRegression(C=0.01, max_iter=500), n=4000)
    (finding,) = Membership().run(target, ScanContext(seed=0))
    assert finding.severity == Severity.INFO
    assert finding.title.startswith("No measurable")


def test_quick_profile_subsamples_and_seeds() -> None:
    x, y = make_classification(n_samples=1600, n_features=10, random_state=1)
    train, test = Dataset(x=x[:800], y=y[:800]), Dataset(x=x[800:], y=y[800:])
    model = SklearnClassifier(LogisticRegression().fit(train.x, train.y), bounds=(-20, 20))
    target = Target(model=model, train=train, test=test)
    a = Membership().run(target, ScanContext(seed=5))[0]
    b = Membership().run(target, ScanContext(seed=5))[0]
    # 500 per side; RMIA sets a quarter of the non-members aside as its population.
    assert a.evidence["n_members"] == 500 and a.evidence["n_nonmembers"] == 375
    assert a.evidence == b.evidence and a.charts == b.charts
    timing = {"reference_train_time"}
    assert [m for m in a.metrics if m.name not in timing] == [
        m for m in b.metrics if m.name not in timing]


def _torch_target() -> Target:
    train, test = _data()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 3))
    return Target(model=TorchClassifier(net, input_shape=(20,), bounds=(-20, 20)),
                  train=train, test=test)


def test_model_without_recipe_runs_threshold_only_and_says_so() -> None:
    (finding,) = Membership().run(_torch_target(), ScanContext(seed=0))
    assert finding.evidence["strongest_attack"] == "loss-threshold"
    assert "membership_recipe" in finding.description
    assert {s.name for s in finding.charts[0].series} == {"chance", "loss-threshold"}


def test_entry_point_recipe_from_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "member_recipe_mod.py").write_text(textwrap.dedent("""
        import torch
        from bastion.models.torch import TorchClassifier

        def train(x, y, *, seed):
            torch.manual_seed(seed)
            net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 3))
            return TorchClassifier(net, input_shape=(x.shape[1],), bounds=(-20, 20))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    ctx = ScanContext(seed=0, options={"membership_recipe": "member_recipe_mod:train"})
    (finding,) = Membership().run(_torch_target(), ctx)
    assert "lira-offline.auc" in {m.name for m in finding.metrics}
    assert "member_recipe_mod:train" in finding.evidence["reference_models"]


def _result(tpr01: float, tpr1: float, auc: float, n_out: int = 2000):
    base = measure("t", np.r_[np.ones(500), np.zeros(n_out)],
                   np.r_[np.ones(500, bool), np.zeros(n_out, bool)], np.zeros(500 + n_out, int))
    return replace(base, tpr_at_fpr={0.001: tpr01, 0.01: tpr1}, auc=auc)


@pytest.mark.parametrize(("tpr01", "tpr1", "auc", "n_out", "expected"), [
    (0.10, 0.20, 0.70, 2000, Severity.CRITICAL),
    (0.09, 0.09, 0.70, 2000, Severity.HIGH),        # near miss of critical
    (0.10, 0.20, 0.70, 500, Severity.HIGH),         # 0.1 % FPR not resolvable
    (0.00, 0.00, 0.91, 2000, Severity.CRITICAL),
    (0.02, 0.02, 0.55, 2000, Severity.HIGH),
    (0.009, 0.05, 0.55, 2000, Severity.MEDIUM),     # near miss of high
    (0.00, 0.04, 0.50, 2000, Severity.MEDIUM),
    (0.00, 0.029, 0.56, 2000, Severity.LOW),
    (0.00, 0.02, 0.54, 2000, Severity.INFO),
    (0.005, 0.009, 0.60, 2000, Severity.MEDIUM),
])
def test_severity_thresholds(tpr01: float, tpr1: float, auc: float, n_out: int,
                             expected: Severity) -> None:
    assert severity_of(_result(tpr01, tpr1, auc, n_out)) == expected


def test_chance_level_hits_on_a_small_held_out_set_are_not_significant() -> None:
    # 17 of 500 members at 1 % FPR over 375 non-members: 3.4 % looks like 3x chance but
    # a random draw of 20 flagged records gives that often enough (p ~ 0.01).
    result = replace(_result(0.0, 0.034, 0.5, n_out=375), auc=0.51)
    assert severity_of(result) == Severity.INFO
    assert severity_of(replace(result, tpr_at_fpr={0.001: 0.0, 0.01: 0.10})) == Severity.HIGH


def test_a_handful_of_lucky_records_does_not_raise_severity() -> None:
    result = replace(_result(0.5, 0.5, 0.5), is_member=np.r_[np.ones(4, bool),
                                                            np.zeros(2000, bool)])
    assert severity_of(result) == Severity.INFO
