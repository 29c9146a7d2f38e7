"""HttpClassifier against a real HTTP server on 127.0.0.1 (stdlib, in a thread)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from bastion.errors import ConfigError, InvalidDataError, RemoteModelError, ShapeMismatchError
from bastion.models.http import HttpClassifier
from bastion.typing import Classifier, Differentiable

W = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -2.0]])


def _softmax_rows(x: np.ndarray) -> list[list[float]]:
    z = x.reshape(len(x), -1) @ W
    e = np.exp(z - z.max(axis=1, keepdims=True))
    rows: list[list[float]] = (e / e.sum(axis=1, keepdims=True)).tolist()
    return rows


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Server:
    """What the endpoint answers next (a queue of scripted replies, then the model)."""

    url: str
    script: list[Callable[[dict[str, Any]], Reply]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)


def _model_reply(body: dict[str, Any]) -> Reply:
    probs = _softmax_rows(np.asarray(body["inputs"], dtype=np.float64))
    return 200, {}, json.dumps({"probabilities": probs}).encode()


def _reply(status: int, payload: object, headers: dict[str, str] | None = None) -> Callable[
        [dict[str, Any]], Reply]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return lambda _: (status, headers or {}, raw)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            state.auth.append(self.headers.get("Authorization"))
            answer = state.script.pop(0) if state.script else _model_reply
            status, headers, raw = answer(body)
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/predict"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _client(url: str, **kw: Any) -> HttpClassifier:
    delays: list[float] = []
    kw.setdefault("sleep", delays.append)
    model = HttpClassifier(url, n_classes=3, input_shape=(1, 2), timeout_s=2.0, **kw)
    model.delays = delays  # type: ignore[attr-defined]
    return model


X = np.random.default_rng(0).random((7, 1, 2))


def test_round_trip_batches_and_counts(server: Server) -> None:
    with _client(server.url, batch_size=3, token="s3cret") as model:
        assert isinstance(model, Classifier) and not isinstance(model, Differentiable)
        probs = model.predict_proba(X)
        assert model.n_queries == 7
    np.testing.assert_allclose(probs, _softmax_rows(X), atol=1e-12)
    assert [len(r["inputs"]) for r in server.requests] == [3, 3, 1]
    assert np.asarray(server.requests[0]["inputs"]).shape == (3, 1, 2)
    assert server.auth == ["Bearer s3cret"] * 3
    assert "s3cret" not in repr(model)


def test_retries_with_backoff_then_succeeds(server: Server) -> None:
    server.script = [_reply(503, {}), _reply(429, {}, {"Retry-After": "0.3"})]
    model = _client(server.url, retries=3, backoff_s=0.1)
    probs = model.predict_proba(X[:2])
    np.testing.assert_allclose(probs, _softmax_rows(X[:2]), atol=1e-12)
    assert model.delays == [0.1, 0.3]  # type: ignore[attr-defined]
    assert model.n_queries == 2 and len(server.requests) == 3


def test_gives_up_after_retries(server: Server) -> None:
    server.script = [_reply(500, {"detail": "boom\nsecond line"})] * 3
    model = _client(server.url, retries=2, backoff_s=0.01)
    with pytest.raises(RemoteModelError, match=r"HTTP 500 \(boom second line\)") as info:
        model.predict_proba(X[:1])
    assert "\n" not in str(info.value)
    assert model.delays == [0.01, 0.02] and model.n_queries == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (_reply(401, {"detail": "bad token"}), "HTTP 401 .*check the token"),
        (_reply(404, b"not json"), "HTTP 404; check the URL"),
        (_reply(302, b"", {"Location": "/elsewhere"}), "redirects .*final URL"),
        (_reply(200, b"<html>"), "invalid JSON"),
        (_reply(200, {"probs": [[1, 0, 0]]}), "no 'probabilities' key"),
        (_reply(200, {"probabilities": [[0.5, 0.5]]}), r"shape \(1, 2\)"),
        (_reply(200, {"probabilities": [[1, 0], [0]]}), "ragged"),
        (_reply(200, {"probabilities": [[2.0, -1.0, 0.0]]}), "returning logits"),
        (_reply(200, {"probabilities": [[0.2, 0.2, 0.2]]}), "sum to 1"),
        (_reply(200, [1, 2]), "no 'probabilities' key"),
    ],
)
def test_bad_answers_fail_at_once_with_one_line(
    server: Server, reply: Callable[[dict[str, Any]], Reply], match: str
) -> None:
    server.script = [reply]
    model = _client(server.url, retries=3)
    with pytest.raises(RemoteModelError, match=match) as info:
        model.predict_proba(X[:1])
    assert len(server.requests) == 1 and "\n" not in str(info.value)
    if "HTTP" in match:
        assert info.value.status == int(match.split("HTTP ")[1][:3])


def test_near_normalised_rows_are_renormalised(server: Server) -> None:
    server.script = [_reply(200, {"probabilities": [[0.5, 0.3, 0.2005]]})]
    probs = _client(server.url).predict_proba(X[:1])
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ([{"label": 0, "probabilities": [0.7, 0.2, 0.1]}], [0.7, 0.2, 0.1]),
        ([{"label": 0, "probabilities": [0.33, 0.33, 0.33]}], [1 / 3] * 3),  # rounded
        ([{"label": 2, "top_k": [{"label": 2, "probability": 0.6}]}], [0.2, 0.2, 0.6]),
        ([{"label": 1}], [0.0, 1.0, 0.0]),
    ],
    ids=["full", "rounded", "top-k", "label-only"],
)
def test_hardened_gateway_answers_become_distributions(
    server: Server, outputs: list[dict[str, Any]], expected: list[float]
) -> None:
    server.script = [_reply(200, {"outputs": outputs})]
    model = _client(server.url)
    np.testing.assert_allclose(model.predict_proba(X[:1]), [expected], atol=1e-12)
    assert model.n_queries == 1


@pytest.mark.parametrize(
    "outputs",
    [[], [{"probabilities": [1, 0, 0]}], [{"label": 5}], [{"label": 0, "top_k": [{"label": 9,
     "probability": 1.0}]}], [{"label": 0, "probabilities": [-1, 1, 1]}], "rows"],
    ids=["too-few", "no-label", "label-out-of-range", "top-k-class-out-of-range", "negative",
         "not-a-list"],
)
def test_malformed_hardened_answers_fail_with_one_line(server: Server, outputs: object) -> None:
    server.script = [_reply(200, {"outputs": outputs})]
    with pytest.raises(RemoteModelError, match="outputs") as info:
        _client(server.url).predict_proba(X[:1])
    assert "\n" not in str(info.value)


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = _client(f"http://127.0.0.1:{port}/p", retries=1, backoff_s=0.01)
    with pytest.raises(RemoteModelError, match=r"could not be reached.*after 2 attempts"):
        model.predict_proba(X[:1])
    assert model.delays == [0.01]  # type: ignore[attr-defined]


def test_input_errors_send_nothing(server: Server) -> None:
    model = _client(server.url)
    with pytest.raises(ShapeMismatchError):
        model.predict_proba(np.zeros((2, 2)))
    with pytest.raises(InvalidDataError, match="NaN"):
        model.predict_proba(np.full((1, 1, 2), np.nan))
    assert server.requests == [] and model.n_queries == 0


@pytest.mark.parametrize(
    ("url", "kw", "match"),
    [
        ("ftp://host/x", {}, "http:// or https://"),
        ("localhost:8000", {}, "http:// or https://"),
        ("http://h/x", {"n_classes": 1}, "n_classes"),
        ("http://h/x", {"timeout_s": 0}, "timeout_s"),
        ("http://h/x", {"retries": -1}, "retries"),
    ],
)
def test_config_errors(url: str, kw: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"n_classes": 3, "input_shape": (2,), **kw}
    with pytest.raises(ConfigError, match=match):
        HttpClassifier(url, **args)
