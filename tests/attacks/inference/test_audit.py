"""End-to-end membership audits on an overfit and a regularised target."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bastion.attacks.inference import (
    RMIA,
    LiRA,
    LossThreshold,
    MembershipAudit,
    ShadowModels,
    SklearnRecipe,
    audit_membership,
)
from bastion.data.dataset import Dataset
from bastion.errors import ConfigError, InvalidDataError
from bastion.models.sklearn import SklearnClassifier
from bastion.progress import ProgressEvent

BOUNDS = (-20.0, 20.0)
ALL = [LossThreshold(), ShadowModels(), LiRA(), LiRA(online=False), RMIA(), RMIA(online=False)]


@pytest.fixture(scope="module")
def split() -> tuple[Dataset, Dataset]:
    """500 members, 500 non-members, 3 classes, 15 % flipped labels to memorise."""
    x, y = make_classification(n_samples=1000, n_features=20, n_informative=8, n_classes=3,
                               n_clusters_per_class=1, flip_y=0.15, random_state=0)
    return Dataset(x=x[:500], y=y[:500]), Dataset(x=x[500:], y=y[500:])


def _audit(estimator: Any, split: tuple[Dataset, Dataset], **kw: Any) -> MembershipAudit:
    members, nonmembers = split
    model = SklearnClassifier(estimator.fit(members.x, members.y), bounds=BOUNDS)
    kw.setdefault("attacks", ALL)
    kw.setdefault("recipe", SklearnRecipe(estimator=estimator, bounds=BOUNDS))
    return audit_membership(model, members, nonmembers, **kw)


@pytest.fixture(scope="module")
def overfit(split: tuple[Dataset, Dataset]) -> dict[str, Any]:
    audit = _audit(RandomForestClassifier(n_estimators=30, random_state=0), split)
    return {r.attack: r for r in audit.results}


@pytest.fixture(scope="module")
def regularised(split: tuple[Dataset, Dataset]) -> dict[str, Any]:
    audit = _audit(LogisticRegression(C=0.01, max_iter=500), split)
    return {r.attack: r for r in audit.results}


def test_overfit_model_leaks_and_regularised_one_does_not(overfit: dict[str, Any],
                                                          regularised: dict[str, Any]) -> None:
    assert overfit["loss-threshold"].auc > 0.75
    assert abs(regularised["loss-threshold"].auc - 0.5) < 0.06
    for name in ("shadow", "lira-online", "lira-offline", "rmia-online", "rmia-offline"):
        assert overfit[name].auc > 0.8, name
        assert overfit[name].auc > regularised[name].auc + 0.2, name


def test_reference_attacks_beat_the_loss_threshold_at_low_fpr(overfit: dict[str, Any]) -> None:
    base = overfit["loss-threshold"]
    for name in ("rmia-online", "rmia-offline"):
        assert overfit[name].tpr_at_fpr[0.01] > 5 * base.tpr_at_fpr[0.01], name
        assert overfit[name].auc > base.auc + 0.08, name
    assert overfit["lira-offline"].auc > base.auc + 0.05


def test_target_is_queried_once_per_record(split: tuple[Dataset, Dataset]) -> None:
    audit = _audit(LogisticRegression(max_iter=300), split, attacks=[LossThreshold(), LiRA()],
                   n_references=4)
    assert {r.n_target_queries for r in audit.results} == {1000}
    assert all(r.n_members == 500 and r.n_nonmembers == 500 for r in audit.results)


def test_rmia_sets_population_aside_from_the_evaluated_nonmembers(
        split: tuple[Dataset, Dataset]) -> None:
    audit = _audit(LogisticRegression(max_iter=300), split, attacks=[RMIA()], n_references=2,
                   population_fraction=0.2)
    (result,) = audit.results
    assert (result.n_members, result.n_nonmembers) == (500, 400)
    assert result.n_target_queries == 1000


def test_same_seed_same_scores_whatever_n_jobs(split: tuple[Dataset, Dataset]) -> None:
    one = _audit(RandomForestClassifier(n_estimators=5, random_state=0), split,
                 attacks=[LiRA(online=False)], n_references=4, seed=3, n_jobs=1)
    two = _audit(RandomForestClassifier(n_estimators=5, random_state=0), split,
                 attacks=[LiRA(online=False)], n_references=4, seed=3, n_jobs=2)
    other = _audit(RandomForestClassifier(n_estimators=5, random_state=0), split,
                   attacks=[LiRA(online=False)], n_references=4, seed=4)
    np.testing.assert_array_equal(one.results[0].scores, two.results[0].scores)
    assert not np.array_equal(one.results[0].scores, other.results[0].scores)


def test_without_recipe_reference_attacks_are_skipped_with_reason(
        split: tuple[Dataset, Dataset]) -> None:
    audit = _audit(LogisticRegression(max_iter=300), split, recipe=None)
    assert [r.attack for r in audit.results] == ["loss-threshold"]
    assert set(audit.skipped) == {"shadow", "lira-online", "lira-offline", "rmia-online",
                                  "rmia-offline"}
    assert audit.references is None


def test_progress_reports_every_reference_model(split: tuple[Dataset, Dataset]) -> None:
    events: list[ProgressEvent] = []
    _audit(LogisticRegression(max_iter=300), split, attacks=[LiRA()], n_references=4,
           progress=events.append)
    refs = [e.completed for e in events if e.task == "reference models"]
    assert refs == [0, 1, 2, 3, 4]


def test_lira_with_too_few_references_is_refused(split: tuple[Dataset, Dataset]) -> None:
    with pytest.raises(ConfigError, match="n_references"):
        _audit(LogisticRegression(max_iter=300), split, attacks=[LiRA()], n_references=2)


@pytest.mark.parametrize("n", [0, 3])
def test_odd_or_zero_reference_budget_is_refused(split: tuple[Dataset, Dataset], n: int) -> None:
    with pytest.raises(ConfigError, match="even number"):
        _audit(LogisticRegression(max_iter=300), split, attacks=[LiRA()], n_references=n)


def test_empty_nonmember_set_is_refused(split: tuple[Dataset, Dataset]) -> None:
    members, nonmembers = split
    empty = Dataset(x=nonmembers.x[:0], y=nonmembers.y[:0] if nonmembers.y is not None else None)
    with pytest.raises(InvalidDataError, match="non-member set is empty"):
        _audit(LogisticRegression(max_iter=300), (members, empty), recipe=None)


def test_unlabelled_nonmembers_are_refused(split: tuple[Dataset, Dataset]) -> None:
    members, nonmembers = split
    with pytest.raises(InvalidDataError, match="no labels"):
        _audit(LogisticRegression(max_iter=300), (members, Dataset(x=nonmembers.x)), recipe=None)


@pytest.mark.slow
def test_online_lira_with_enough_references_wins_at_low_fpr(
        split: tuple[Dataset, Dataset]) -> None:
    """Carlini et al.: online LiRA needs many IN/OUT models (here 32 of each, enough for
    per-record variances), and then leads at low FPR."""
    audit = _audit(RandomForestClassifier(n_estimators=30, random_state=0), split,
                   attacks=[LossThreshold(), LiRA()], n_references=64)
    base, lira = audit.results
    # 500 non-members resolve 1 % FPR (5 false alarms), not 0.1 %.
    assert lira.tpr_at_fpr[0.01] > 0.4 > 5 * base.tpr_at_fpr[0.01]
    assert audit.strongest() is lira
