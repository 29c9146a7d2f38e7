import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bastion.attacks.inference._result import measure, tpr_at_fpr
from bastion.errors import InvalidDataError, ShapeMismatchError


def test_perfect_scores_give_full_tpr_at_every_fpr() -> None:
    member = np.array([True] * 50 + [False] * 50)
    result = measure("oracle", member.astype(float), member, np.zeros(100, dtype=int))
    assert result.auc == 1.0
    assert result.tpr_at_fpr == {0.001: 1.0, 0.01: 1.0}
    assert result.balanced_accuracy == 1.0


def test_random_scores_are_near_chance() -> None:
    rng = np.random.default_rng(0)
    member = rng.random(4000) < 0.5
    result = measure("coin", rng.random(4000), member, np.zeros(4000, dtype=int))
    assert abs(result.auc - 0.5) < 0.03
    assert result.tpr_at_fpr[0.01] < 0.03


def test_tpr_at_fpr_never_exceeds_the_fpr_budget() -> None:
    fpr = np.array([0.0, 0.0005, 0.005, 0.02, 1.0])
    tpr = np.array([0.0, 0.1, 0.3, 0.6, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.001) == 0.1
    assert tpr_at_fpr(fpr, tpr, 0.01) == 0.3
    assert tpr_at_fpr(fpr, tpr, 0.0) == 0.0


def test_per_class_auc_and_most_exposed_members() -> None:
    member = np.array([True, True, False, False, True, False])
    y = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.9, 0.2, 0.1, 0.3, 0.8, 0.85])
    result = measure("t", scores, member, y, n_exposed=2)
    assert result.per_class_auc[0] == pytest.approx(0.75)
    assert result.per_class_auc[1] == 0.0
    assert result.most_exposed.tolist() == [0, 4]  # members only, highest score first


def test_roc_points_start_at_the_resolvable_fpr() -> None:
    member = np.array([True] * 10 + [False] * 100)
    result = measure("t", np.linspace(1, 0, 110), member, np.zeros(110, dtype=int))
    xs, ys = result.roc_points(20)
    assert xs[0] == pytest.approx(0.01) and xs[-1] == pytest.approx(1.0)
    assert ys == sorted(ys) and ys[0] == 1.0


@pytest.mark.parametrize("member", [np.ones(4, dtype=bool), np.zeros(4, dtype=bool)])
def test_one_sided_split_is_refused(member: np.ndarray) -> None:
    with pytest.raises(InvalidDataError, match="both members and non-members"):
        measure("t", np.arange(4.0), member, np.zeros(4, dtype=int))


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ShapeMismatchError):
        measure("t", np.arange(4.0), np.array([True, False]), np.zeros(4, dtype=int))


def test_nan_scores_are_refused() -> None:
    with pytest.raises(InvalidDataError, match="NaN"):
        measure("t", np.array([np.nan, 1.0]), np.array([True, False]), np.zeros(2, dtype=int))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.booleans(), st.integers(0, 3)),
                min_size=2, max_size=200))
def test_result_invariants(rows: list[tuple[float, bool, int]]) -> None:
    scores = np.array([r[0] for r in rows])
    member = np.array([r[1] for r in rows])
    y = np.array([r[2] for r in rows])
    assume(member.any() and not member.all())
    result = measure("h", scores, member, y, n_exposed=5)
    assert 0.0 <= result.auc <= 1.0
    assert 0.5 <= result.balanced_accuracy <= 1.0
    assert result.tpr_at_fpr[0.001] <= result.tpr_at_fpr[0.01]
    assert member[result.most_exposed].all()
    assert len(result.most_exposed) == min(5, int(member.sum()))
    exposed_scores = scores[result.most_exposed]
    assert (np.diff(exposed_scores) <= 0).all()
    # Flipping the scores' sign mirrors the AUC.
    assert measure("h", -scores, member, y).auc == pytest.approx(1.0 - result.auc)
