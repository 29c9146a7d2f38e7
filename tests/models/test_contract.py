"""One conformance suite that every adapter passes (the Classifier contract).

Each adapter is built on a real model of its kind; the checks are the promises in
``bastion.typing.Classifier``: shapes, distributions, query counting, shape errors that
cost nothing, determinism, and empty batches.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bastion.errors import ShapeMismatchError
from bastion.typing import Classifier

RNG = np.random.default_rng(0)
X = RNG.random((40, 4))
Y = (X[:, 0] * 3).astype(int)


def _torch(_: Path) -> Classifier:
    import torch

    from bastion.models.torch import TorchClassifier

    torch.manual_seed(0)
    return TorchClassifier(torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(),
                                               torch.nn.Linear(5, 3)), input_shape=(4,))


def _twin(_: Path) -> Classifier:
    from bastion.models import as_classifier

    return as_classifier(LogisticRegression().fit(X, Y))


def _forest(_: Path) -> Classifier:
    from bastion.models import as_classifier

    return as_classifier(RandomForestClassifier(n_estimators=4, random_state=0).fit(X, Y))


def _onnx(tmp: Path) -> Classifier:
    from onnx import TensorProto, helper, numpy_helper, save_model

    from bastion.models.onnx import OnnxClassifier

    w = numpy_helper.from_array(RNG.normal(size=(4, 3)).astype(np.float32), "W")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y],
                              initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, tmp / "m.onnx")
    return OnnxClassifier(tmp / "m.onnx", batch_size=7)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            inputs = np.asarray(json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                                ["inputs"])
            z = np.stack([inputs.sum(axis=1), inputs[:, 0], -inputs[:, 1]], axis=1)
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            raw = json.dumps({"probabilities": p.tolist()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


ADAPTERS: dict[str, Callable[[Path], Classifier]] = {
    "torch": _torch, "sklearn-twin": _twin, "sklearn-forest": _forest, "onnx": _onnx,
}


@pytest.fixture(params=[*ADAPTERS, "http"])
def model(request: pytest.FixtureRequest, tmp_path: Path) -> Classifier:
    if request.param == "http":
        from bastion.models.http import HttpClassifier

        return HttpClassifier(request.getfixturevalue("http_url"), n_classes=3,
                              input_shape=(4,), batch_size=7)
    return ADAPTERS[request.param](tmp_path)


def test_is_a_classifier_with_its_promised_shapes(model: Classifier) -> None:
    assert isinstance(model, Classifier)
    assert model.n_classes == 3 and model.input_shape == (4,)
    low, high = model.bounds
    assert low < high


def test_probabilities_are_distributions(model: Classifier) -> None:
    probs = model.predict_proba(X[:17])
    assert probs.shape == (17, 3) and probs.dtype == np.float64
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_every_sample_is_one_query(model: Classifier) -> None:
    model.reset_queries()
    model.predict_proba(X[:17])
    model.predict_proba(X[:1])
    assert model.n_queries == 18
    model.reset_queries()
    assert model.n_queries == 0


def test_deterministic_and_batch_independent(model: Classifier) -> None:
    whole = model.predict_proba(X[:10])
    parts = np.concatenate([model.predict_proba(X[i : min(i + 3, 10)]) for i in range(0, 10, 3)])
    np.testing.assert_allclose(whole, parts, atol=1e-6)
    np.testing.assert_allclose(whole, model.predict_proba(X[:10]), atol=0)


@pytest.mark.parametrize("shape", [(4,), (2, 5), (2, 4, 1), (3, 2, 2)])
def test_shape_errors_cost_no_queries(model: Classifier, shape: tuple[int, ...]) -> None:
    model.reset_queries()
    with pytest.raises(ShapeMismatchError):
        model.predict_proba(np.zeros(shape))
    assert model.n_queries == 0


def test_empty_batch_asks_nothing(model: Classifier) -> None:
    model.reset_queries()
    assert model.predict_proba(np.zeros((0, 4))).shape == (0, 3)
    assert model.n_queries == 0


@settings(max_examples=15, deadline=None)
@given(x=arrays(np.float64, st.tuples(st.integers(1, 9), st.just(4)),
                elements=st.floats(-50, 50)))
def test_any_finite_input_gives_distributions(x: np.ndarray) -> None:
    for build in (_torch, _twin, _forest):
        probs = build(Path()).predict_proba(x)
        assert probs.shape == (len(x), 3) and np.all(probs >= 0)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
