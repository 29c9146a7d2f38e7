import numpy as np
import pytest
from scipy import stats
from tests.detection.conftest import Recorder

from bastion.attacks.extraction import JacobianAugmentation, extract_model
from bastion.detection.extraction import PRADA, QueryDistribution, beta_binomial_sf_table
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.models.torch import TorchClassifier

Digits = tuple[TorchClassifier, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _attack_queries(model: TorchClassifier, strategy: object, eval_x: np.ndarray,
                    budget: int) -> np.ndarray:
    target = Recorder(model)
    extract_model(target, strategy, budget=budget, eval_x=eval_x,  # type: ignore[arg-type]
                  n_rounds=6, epochs=10, seed=0)
    return np.concatenate(target.asked[1:])  # [0] is the evaluation set, not the attack


def _first_alarm(model: TorchClassifier, stream: np.ndarray, prada: PRADA) -> int | None:
    state = prada.state()
    for start in range(0, len(stream), 10):
        batch = stream[start : start + 10]
        if state.update(batch, model.predict_proba(batch).argmax(1)).alarm:
            return start + len(batch)
    return None


def test_prada_fires_on_jacobian_queries_not_on_natural_ones(digits: Digits) -> None:
    model, train_x, _, test_x, _ = digits
    prada = PRADA(delta=0.9)
    queries = _attack_queries(model, JacobianAugmentation(seed_x=test_x[:20], step=0.1),
                              test_x, budget=640)
    alarm_at = _first_alarm(model, queries, prada)
    assert alarm_at is not None and alarm_at <= 200  # measured: 110 queries
    for seed in range(3):  # benign clients: natural digits in random order, repeats allowed
        rng = np.random.default_rng(seed)
        assert _first_alarm(model, train_x[rng.permutation(len(train_x))[:1000]], prada) is None
        assert _first_alarm(model, test_x[rng.integers(0, len(test_x), 1000)], prada) is None


def test_prada_state_follows_the_paper(digits: Digits) -> None:
    _, _, _, test_x, _ = digits
    state = PRADA(min_distances=10).state()
    labels = np.zeros(12, dtype=int)
    status = state.update(test_x[:12], labels)
    assert status.n_queries == 12 and status.n_distances == 11  # first query seeds G_0
    assert status.w is not None and 0 < status.w <= 1
    repeat = state.update(test_x[:1], labels[:1])
    assert repeat.n_distances == 11  # an exact repeat adds no distance


def test_prada_alarms_on_a_spike_of_tiny_steps() -> None:
    rng = np.random.default_rng(0)
    seeds = rng.uniform(size=(20, 16))
    # Papernot-style: many points a tiny step from earlier ones, a few far jumps.
    walk = np.concatenate([seeds] + [seeds + 0.01 * k * rng.choice([-1, 1], size=seeds.shape)
                                     for k in range(1, 8)])
    status = PRADA(delta=0.9).state().update(walk, np.zeros(len(walk), dtype=int))
    assert status.alarm and status.w is not None and status.w < 0.9


def test_query_distribution_flags_random_queries_not_natural_ones(digits: Digits) -> None:
    _, train_x, _, test_x, _ = digits
    fitted = QueryDistribution().fit(train_x, generator=np.random.default_rng(0))
    natural = fitted.state()
    for start in range(0, len(test_x), 10):
        assert not natural.update(test_x[start : start + 10]).alarm
    random = fitted.state()
    status = random.update(np.random.default_rng(0).uniform(size=(40, 1, 8, 8)))
    assert status.alarm and status.n_outside == 40
    assert status.p_value is not None and status.p_value < 1e-20


def test_query_distribution_rate_on_natural_data_is_at_most_alpha_query(digits: Digits) -> None:
    _, train_x, _, test_x, _ = digits
    fitted = QueryDistribution(alpha_query=0.05).fit(train_x, generator=np.random.default_rng(1))
    assert fitted.outside(test_x).mean() <= 0.05 + 0.03  # conformal guarantee plus noise


def test_query_distribution_window_forgets_old_queries(digits: Digits) -> None:
    _, train_x, _, test_x, _ = digits
    fitted = QueryDistribution(window=50).fit(train_x, generator=np.random.default_rng(0))
    state = fitted.state()
    state.update(np.ones((50, 1, 8, 8), dtype=np.float32))
    assert state.status.alarm
    status = state.update(test_x[:50])
    assert status.n_window == 50 and not status.alarm


def test_bad_parameters_and_inputs(digits: Digits) -> None:
    _, train_x, _, _, _ = digits
    with pytest.raises(ConfigError):
        PRADA(delta=1.0)
    with pytest.raises(ConfigError):
        QueryDistribution(alpha=0.0)
    with pytest.raises(InvalidDataError):
        QueryDistribution().fit(train_x[:2], generator=np.random.default_rng(0))
    state = PRADA().state()
    with pytest.raises(ShapeMismatchError):
        state.update(np.zeros((3, 4)), np.zeros(2))
    fitted = QueryDistribution().fit(train_x, generator=np.random.default_rng(0))
    with pytest.raises(ShapeMismatchError):
        fitted.outside(np.zeros((2, 5)))


def test_small_calibration_sets_do_not_inflate_false_alarms(digits: Digits) -> None:
    # 40 calibration rows make the cut itself noisy; the Beta-Binomial test accounts for
    # it, where a plain binomial test at alpha=0.01 alarmed on 6 of these 60 draws.
    _, train_x, _, test_x, _ = digits
    alarms = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        fitted = QueryDistribution(alpha=0.01).fit(train_x[rng.permutation(len(train_x))[:80]],
                                                   generator=rng)
        alarms += fitted.state().update(test_x[rng.permutation(len(test_x))[:200]]).alarm
    assert alarms <= 3  # 0.6 expected at 1 %


def test_prada_keeps_a_bounded_distance_set() -> None:
    rng = np.random.default_rng(0)
    state = PRADA(min_distances=10, max_distances=50).state()
    status = state.update(rng.normal(size=(200, 4)), np.zeros(200, dtype=int))
    assert status.n_queries == 200 and status.n_distances == 50
    with pytest.raises(ConfigError):
        PRADA(min_distances=100, max_distances=100)


def _prada_reference(prada: PRADA, batches: list[tuple[np.ndarray, np.ndarray]]
                     ) -> list[tuple[int, float | None, bool]]:
    """PRADA as the paper states it, one query at a time (the implementation before it
    was batched): (n_distances, W, alarm) after each batch."""
    sets: dict[int, tuple[list[np.ndarray], list[float], list[float]]] = {}
    distances: list[float] = []
    out: list[tuple[int, float | None, bool]] = []
    for x, labels in batches:
        for row, label in zip(x.reshape(len(x), -1).astype(np.float64), labels, strict=True):
            if int(label) not in sets:
                sets[int(label)] = ([row], [0.0], [0.0])
                continue
            points, spread, threshold = sets[int(label)]
            d_min = float(np.sqrt(((np.asarray(points) - row) ** 2).sum(axis=1).min()))
            if d_min == 0.0:
                continue
            distances.append(d_min)
            if d_min > threshold[0]:
                points.append(row)
                spread.append(d_min)
                threshold[0] = max(threshold[0], float(np.mean(spread) - np.std(spread)))
        d = np.asarray(distances[-prada.max_distances:])
        w = None
        if len(d) > prada.min_distances:
            kept = d[np.abs(d - d.mean()) <= prada.outlier_std * d.std()]
            w = float(stats.shapiro(kept).statistic) if np.ptp(kept) > 0 else 0.0
        out.append((len(d), w, w is not None and w < prada.delta))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_prada_matches_the_query_by_query_reference(seed: int) -> None:
    # Random streams with what makes the batched path hard: several classes in one
    # batch, points of a batch that join the growing set and are the nearest to later
    # points of the same batch, exact repeats, batches of 1 to 40 rows, and a distance
    # window that overflows in the middle of a batch.
    rng = np.random.default_rng(seed)
    prada = PRADA(min_distances=20, max_distances=150)
    seeds = rng.uniform(size=(30, 6))
    batches = []
    for _ in range(40):
        n = int(rng.integers(1, 41))
        x = seeds[rng.integers(0, len(seeds), n)] + rng.choice(
            [0.0, 0.01, 0.3], size=(n, 1)) * rng.normal(size=(n, 6))
        x[rng.random(n) < 0.1] = seeds[0]  # exact repeats
        batches.append((x, rng.integers(0, 4, n)))
    expected = _prada_reference(prada, batches)
    state = prada.state()
    for (x, labels), (n_distances, w, alarm) in zip(batches, expected, strict=True):
        status = state.update(x, labels)
        assert status.n_distances == n_distances and status.alarm == alarm
        assert (status.w is None) == (w is None)
        if w is not None:
            assert status.w == pytest.approx(w, abs=1e-12)
    assert any(alarm for _, _, alarm in expected) and not all(a for _, _, a in expected)


@pytest.mark.parametrize(("n", "a", "b"), [(30, 1, 20), (100, 5, 96), (200, 17, 284)])
def test_beta_binomial_table_matches_scipy(n: int, a: int, b: int) -> None:
    table = beta_binomial_sf_table(n, a, b)
    pmf = stats.betabinom.pmf(np.arange(n + 1), n, a, b)
    for k in (0, 1, n // 3, n):  # the tail by definition: a sum of scipy's pmf
        assert table[k] == pytest.approx(float(pmf[k:].sum()), rel=1e-12)
    assert table[1] == pytest.approx(float(stats.betabinom.sf(0, n, a, b)), rel=1e-12)
