"""Extraction: fidelity grows with queries, every query is counted, budgets hold."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from bastion.attacks.extraction import (
    STRATEGIES,
    ExtractionState,
    JacobianAugmentation,
    KnockoffNets,
    RandomQueries,
    extract_model,
)
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.models.http import HttpClassifier
from bastion.models.sklearn import SklearnClassifier


@pytest.fixture(scope="module")
def digits() -> dict[str, Any]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    p = np.random.default_rng(0).permutation(len(x))
    x, y = x[p], y[p]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((64,), max_iter=300, random_state=0).fit(x[:900], y[:900])
    return {"est": est, "pool": x[900:1400], "ex": x[1400:], "ey": y[1400:]}


def _target(digits: dict[str, Any]) -> SklearnClassifier:
    return SklearnClassifier(digits["est"])


def test_knockoff_fidelity_rises_with_queries_and_beats_random(digits: dict[str, Any]) -> None:
    model = _target(digits)
    knock = extract_model(model, KnockoffNets(pool=digits["pool"]), budget=400,
                          eval_x=digits["ex"], eval_y=digits["ey"], epochs=20)
    rand = extract_model(_target(digits), RandomQueries(), budget=400, eval_x=digits["ex"],
                         epochs=20)
    fid = [s.fidelity for s in knock.steps]
    assert [s.n_queries for s in knock.steps] == [100, 200, 300, 400]
    assert fid[-1] > fid[0] + 0.03 and fid[-1] > 0.9
    assert knock.accuracy is not None and knock.accuracy > 0.85
    assert rand.fidelity < knock.fidelity - 0.3
    assert rand.accuracy is None


def test_every_query_is_counted_and_the_budget_holds(digits: dict[str, Any]) -> None:
    model = _target(digits)
    result = extract_model(model, RandomQueries(), budget=250, n_rounds=3,
                           eval_x=digits["ex"], epochs=2)
    assert result.n_queries == 250
    assert result.n_eval_queries == len(digits["ex"])
    assert model.n_queries == result.n_queries + result.n_eval_queries


def test_jacobian_augmentation_improves_on_its_seed_set(digits: dict[str, Any]) -> None:
    seed_x = digits["pool"][:60]
    result = extract_model(_target(digits), JacobianAugmentation(seed_x=seed_x, step=0.1),
                           budget=480, n_rounds=4, eval_x=digits["ex"], epochs=20)
    counts = [s.n_queries for s in result.steps]
    assert counts[0] == 60 and counts[1] == 120  # the known set doubles per round
    assert result.n_queries <= 480
    assert result.fidelity > result.steps[0].fidelity


def test_jacobian_points_move_by_step_along_the_sign_and_stay_in_bounds(
        digits: dict[str, Any]) -> None:
    seed_x = digits["pool"][:20]
    first = extract_model(_target(digits), JacobianAugmentation(seed_x=seed_x), budget=20,
                          n_rounds=1, eval_x=digits["ex"], epochs=5)
    state = ExtractionState(round=1, x=seed_x, probs=digits["est"].predict_proba(seed_x),
                            surrogate=first.surrogate, input_shape=(64,), bounds=(0.0, 1.0),
                            seed=0)
    new = JacobianAugmentation(seed_x=seed_x, step=0.25).propose(
        20, state, np.random.default_rng(0))
    moved = np.abs(new - seed_x)
    assert new.min() >= 0.0 and new.max() <= 1.0
    inside = (seed_x > 0.25) & (seed_x < 0.75)
    assert moved.max() <= 0.25 + 1e-6
    assert np.isclose(moved[inside], 0.25, atol=1e-6).mean() > 0.9


def test_same_seed_same_run(digits: dict[str, Any]) -> None:
    a = extract_model(_target(digits), KnockoffNets(pool=digits["pool"]), budget=100,
                      n_rounds=2, eval_x=digits["ex"], epochs=3, seed=4)
    b = extract_model(_target(digits), KnockoffNets(pool=digits["pool"]), budget=100,
                      n_rounds=2, eval_x=digits["ex"], epochs=3, seed=4)
    assert a.steps == b.steps


def test_strategies_are_registered() -> None:
    assert STRATEGIES.names() == ["jacobian", "knockoff", "random"]


@pytest.mark.parametrize("budget", [0, -5])
def test_non_positive_budget_is_refused(digits: dict[str, Any], budget: int) -> None:
    with pytest.raises(ConfigError, match="query budget"):
        extract_model(_target(digits), RandomQueries(), budget=budget, eval_x=digits["ex"])


def test_empty_pool_and_wrong_shapes_are_refused(digits: dict[str, Any]) -> None:
    with pytest.raises(InvalidDataError, match="pool is empty"):
        KnockoffNets(pool=digits["pool"][:0])
    with pytest.raises(ShapeMismatchError):
        extract_model(_target(digits), RandomQueries(), budget=5,
                      eval_x=np.zeros((3, 8, 8), np.float32))


def test_exhausted_pool_stops_early(digits: dict[str, Any]) -> None:
    result = extract_model(_target(digits), KnockoffNets(pool=digits["pool"][:30]), budget=100,
                           n_rounds=4, eval_x=digits["ex"], epochs=2)
    assert result.n_queries == 30


@pytest.fixture
def served_model() -> Iterator[dict[str, Any]]:
    """A logistic regression behind a real HTTP server on 127.0.0.1 that counts inputs."""
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    est = LogisticRegression(max_iter=1000).fit(x[:300], y[:300])
    seen = {"inputs": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs = np.asarray(body["inputs"], dtype=np.float64)
            seen["inputs"] += len(inputs)
            out = json.dumps({"probabilities": est.predict_proba(inputs).tolist()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}/predict", "seen": seen,
               "x": x, "y": y}
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_steals_a_model_served_over_http(served_model: dict[str, Any]) -> None:
    x, y = served_model["x"], served_model["y"]
    model = HttpClassifier(served_model["url"], n_classes=2, input_shape=(30,),
                           bounds=(-15.0, 15.0))
    result = extract_model(model, KnockoffNets(pool=x[300:450]), budget=150, n_rounds=3,
                           eval_x=x[450:], eval_y=y[450:], epochs=30)
    assert served_model["seen"]["inputs"] == result.n_queries + result.n_eval_queries
    assert model.n_queries == served_model["seen"]["inputs"]
    assert result.n_queries == 150
    assert result.fidelity > 0.9


@settings(max_examples=15, deadline=None, derandomize=True)
@given(budget=st.integers(1, 120), rounds=st.integers(1, 5))
def test_budget_is_never_exceeded_and_all_queries_counted(budget: int, rounds: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((60, 4)).astype(np.float32)
    model = SklearnClassifier(LogisticRegression().fit(x, x[:, 0] > 0.5))
    result = extract_model(model, RandomQueries(), budget=budget, n_rounds=rounds,
                           eval_x=x[:10], epochs=1)
    assert result.n_queries == budget
    assert model.n_queries == budget + 10
    assert [s.n_queries for s in result.steps] == sorted(s.n_queries for s in result.steps)
