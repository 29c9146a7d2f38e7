"""The gateway over real HTTP: auth, scopes, validation, output per role, guards,
health and metrics."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from bastion.gateway.hooks import RequestEvent, Verdict
from bastion.gateway.server import running as live


@pytest.fixture(scope="module")
def served(make_app: Callable[..., Any]) -> Any:
    app = make_app()
    with live(app) as url:
        yield app, url


def _token(app: Any, role: str = "client", **kw: Any) -> str:
    token, _ = app.state.tokens.create(name="t", role=role, **kw)
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _predict(url: str, token: str | None, payload: Any, **kw: Any) -> httpx.Response:
    headers = bearer(token) if token else {}
    return httpx.post(f"{url}/v1/predict", json=payload, headers=headers, timeout=10, **kw)


def test_admin_gets_probabilities_that_match_the_model(served: Any, digits: Any) -> None:
    app, url = served
    x = digits[0]
    r = _predict(url, _token(app, "admin"), {"inputs": x[:4].tolist()})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    expected = app.state.models.current.model.predict_proba(x[:4])
    np.testing.assert_allclose([o["probabilities"] for o in out], expected, rtol=1e-5)
    assert [o["label"] for o in out] == expected.argmax(1).tolist()


@pytest.mark.parametrize(("role", "keys"), [
    ("admin", {"label", "probabilities"}),
    ("analyst", {"label", "top_k"}),
    ("client", {"label"}),
])
def test_output_is_hardened_per_role(served: Any, digits: Any, role: str, keys: set[str]) -> None:
    app, url = served
    r = _predict(url, _token(app, role), {"inputs": digits[0][:2].tolist()})
    assert r.status_code == 200
    for row in r.json()["outputs"]:
        assert set(row) == keys
        if "top_k" in row:
            assert len(row["top_k"]) == 3


def test_npy_body_is_accepted(served: Any, digits: Any) -> None:
    app, url = served
    buf = io.BytesIO()
    np.save(buf, digits[0][:3])
    r = httpx.post(f"{url}/v1/predict", content=buf.getvalue(), timeout=10,
                   headers={**bearer(_token(app)), "content-type": "application/x-npy"})
    assert r.status_code == 200 and len(r.json()["outputs"]) == 3


def test_pickled_npy_is_refused(served: Any) -> None:
    app, url = served
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = httpx.post(f"{url}/v1/predict", content=buf.getvalue(), timeout=10,
                   headers={**bearer(_token(app)), "content-type": "application/x-npy"})
    assert r.status_code == 400 and "pickled" in r.json()["detail"]


@pytest.mark.parametrize(("header", "status", "words"), [
    (None, 401, "Authorization"),
    ("Bearer nonsense", 401, "not valid"),
    ("Bearer bst_0123456789abcdef_forged", 401, "not valid"),
    ("Basic dXNlcjpwYXNz", 401, "Authorization"),
])
def test_bad_credentials_are_refused(served: Any, digits: Any, header: str | None,
                                     status: int, words: str) -> None:
    _, url = served
    headers = {"Authorization": header} if header else {}
    r = httpx.post(f"{url}/v1/predict", json={"inputs": digits[0][:1].tolist()},
                   headers=headers, timeout=10)
    assert r.status_code == status and words in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_expired_and_revoked_tokens_are_refused(served: Any, digits: Any) -> None:
    app, url = served
    payload = {"inputs": digits[0][:1].tolist()}
    short = _token(app, ttl_s=0.5)
    assert _predict(url, short, payload).status_code == 200
    time.sleep(0.6)
    r = _predict(url, short, payload)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    token, info = app.state.tokens.create(name="r", role="client")
    assert _predict(url, token, payload).status_code == 200
    app.state.tokens.revoke(info.id)  # as the CLI does, from the database
    r = _predict(url, token, payload)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_wrong_scope_is_forbidden(served: Any, digits: Any) -> None:
    app, url = served
    audit_only = _token(app, "analyst", scopes=("audit:read",))
    r = _predict(url, audit_only, {"inputs": digits[0][:1].tolist()})
    assert r.status_code == 403 and "'predict'" in r.json()["detail"]
    assert httpx.get(f"{url}/metrics", headers=bearer(_token(app)), timeout=5).status_code == 403


@pytest.mark.parametrize(("body", "ctype", "status", "words"), [
    (b'{"inputs": [[0.1, 0.2', "application/json", 400, "not valid JSON"),
    (b'{"x": 1}', "application/json", 422, "exactly one key"),
    (json.dumps({"inputs": [[0.5] * 63]}).encode(), "application/json", 422, "(n, 64)"),
    (json.dumps({"inputs": [[0.5] * 64, [0.5] * 63]}).encode(), "application/json", 422,
     "equally shaped"),
    (json.dumps({"inputs": [["secret-word"] * 64]}).encode(), "application/json", 422,
     "numbers"),
    (b'{"inputs": [[NaN' + b", 0.5" * 63 + b"]]}", "application/json", 422, "NaN"),
    (json.dumps({"inputs": [[7.0] * 64]}).encode(), "application/json", 422, "[0.0, 1.0]"),
    (json.dumps({"inputs": [[0.5] * 64] * 300}).encode(), "application/json", 413, "300"),
    (b"a,b", "text/csv", 415, "application/json"),
])
def test_bad_input_gets_4xx_that_names_the_problem_without_echo(
        served: Any, body: bytes, ctype: str, status: int, words: str) -> None:
    app, url = served
    r = httpx.post(f"{url}/v1/predict", content=body, timeout=10,
                   headers={**bearer(_token(app)), "content-type": ctype})
    assert r.status_code == status
    detail = r.json()["detail"]
    assert words in detail
    assert "secret-word" not in r.text and "0.1, 0.2" not in r.text


def test_oversized_body_is_413_before_it_is_read(make_app: Callable[..., Any],
                                                 settings: Any) -> None:
    app = make_app(settings=settings.model_copy(update={"max_body_bytes": 2000}))
    with live(app) as url:
        r = httpx.post(f"{url}/v1/predict", content=b"[" * 5000, timeout=10,
                       headers={**bearer(_token(app)), "content-type": "application/json"})
        assert r.status_code == 413 and "2000 bytes" in r.json()["detail"]
        chunked = httpx.post(f"{url}/v1/predict", content=iter([b"[" * 1000] * 5), timeout=10,
                             headers={**bearer(_token(app)), "content-type": "application/json"})
        assert chunked.status_code == 413  # no Content-Length: counted as it arrives


def test_flood_from_one_token_gets_429(make_app: Callable[..., Any], settings: Any,
                                       digits: Any) -> None:
    app = make_app(settings=settings.model_copy(update={"rate_limit_token": "5/minute"}))
    payload = {"inputs": digits[0][:1].tolist()}
    with live(app) as url:
        token, other = _token(app), _token(app)
        # windows start on whole minutes and the sliding count floors the weighted
        # previous window, so a flood straddling a boundary gets one more request through
        if (left := 60.0 - time.time() % 60.0) < 3.0:
            time.sleep(left + 0.01)
        codes = [_predict(url, token, payload).status_code for _ in range(8)]
        assert codes == [200] * 5 + [429] * 3
        r = _predict(url, token, payload)
        assert int(r.headers["retry-after"]) >= 1
        assert _predict(url, other, payload).status_code == 200  # other tokens unaffected


def test_a_spent_limit_comes_back_when_its_windows_pass(make_app: Callable[..., Any],
                                                      settings: Any, digits: Any) -> None:
    app = make_app(settings=settings.model_copy(update={"rate_limit_token": "2/second"}))
    payload = {"inputs": digits[0][:1].tolist()}
    with live(app) as url:
        token = _token(app)
        # first requests are slow (caches, the model's first call): with another token
        _predict(url, _token(app), payload)
        # Windows start on whole seconds, and the sliding count weighs a full previous
        # window by the part of it still overlapping (floored): three requests that
        # straddle a boundary are all allowed. Start just after one.
        time.sleep(1.0 - time.time() % 1.0 + 0.01)
        assert [_predict(url, token, payload).status_code for _ in range(3)] == [200, 200, 429]
        time.sleep(2.05)  # the window and the one after it are over: nothing counts
        assert _predict(url, token, payload).status_code == 200


def test_forwarded_for_does_not_dodge_the_client_limit(make_app: Callable[..., Any],
                                                       settings: Any, digits: Any) -> None:
    app = make_app(settings=settings.model_copy(update={"rate_limit_client": "3/minute"}))
    payload = {"inputs": digits[0][:1].tolist()}
    with live(app) as url:
        codes = [httpx.post(f"{url}/v1/predict", json=payload, timeout=10, headers={
            **bearer(_token(app)), "X-Forwarded-For": f"10.0.0.{i}"}).status_code
            for i in range(5)]
    assert codes == [200] * 3 + [429] * 2


class _Recorder:
    """A guard with a fixed verdict that remembers what it was told."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.events: list[RequestEvent] = []

    def before(self, client: str, token_id: str | None) -> Verdict:
        return self.verdict

    def after(self, event: RequestEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize(("verdict", "status"), [
    (Verdict.BLOCK, 403), (Verdict.THROTTLE, 429), (Verdict.LABEL_ONLY, 200),
    (Verdict.ALLOW, 200),
])
def test_guard_verdicts(make_app: Callable[..., Any], digits: Any, verdict: Verdict,
                        status: int) -> None:
    guard = _Recorder(verdict)
    app = make_app(guards=[guard])
    with live(app) as url:
        r = _predict(url, _token(app, "admin"), {"inputs": digits[0][:2].tolist()})
    assert r.status_code == status
    if status == 200:
        rows = r.json()["outputs"]
        assert all(set(o) == ({"label"} if verdict is Verdict.LABEL_ONLY
                              else {"label", "probabilities"}) for o in rows)
        (event,) = guard.events
        assert event.x.shape == (2, 64) and event.proba.shape == (2, 10)
        assert event.role == "admin" and event.decision in ("allow", "label-only")
    else:
        assert guard.events == []


def test_controls_act_at_run_time(served: Any, digits: Any) -> None:
    app, url = served
    payload = {"inputs": digits[0][:1].tolist()}
    token, info = app.state.tokens.create(name="c", role="admin")
    controls = app.state.controls
    controls.set_label_only("token", info.id)
    assert set(_predict(url, token, payload).json()["outputs"][0]) == {"label"}
    controls.set_label_only("token", info.id, on=False)
    controls.set_rate_limit("client", "127.0.0.1", "1/minute")
    assert _predict(url, token, payload).status_code == 200
    assert _predict(url, token, payload).status_code == 429
    controls.set_rate_limit("client", "127.0.0.1", None)
    controls.revoke_token(info.id)
    assert _predict(url, token, payload).status_code == 401


def test_health_ready_metrics_openapi(served: Any, digits: Any) -> None:
    app, url = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["status"] == "ready" and ready["model_version"] == "digits.skops"
    assert ready["checks"] == {"database": True, "rate_limits": True, "audit_log": True}
    admin = _token(app, "admin")

    def rows() -> float:
        text = httpx.get(f"{url}/metrics", headers=bearer(admin)).text
        (line,) = [ln for ln in text.splitlines()
                   if ln.startswith("bastion_gateway_predicted_rows_total ")]
        return float(line.split()[1])

    before = rows()
    _predict(url, admin, {"inputs": digits[0][:3].tolist()})
    assert rows() == before + 3
    doc = httpx.get(f"{url}/openapi.json").json()
    body = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-npy"} <= set(body)
    r = httpx.get(f"{url}/healthz")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_predict_keeps_what_the_router_gave_it(served: Any, digits: Any) -> None:
    # POST /v1/predict goes straight to its endpoint (past the router): the gateway's
    # middlewares still wrap it, and the router still answers every other method.
    app, url = served
    admin = _token(app, "admin")

    def counted(status: str) -> float:
        text = httpx.get(f"{url}/metrics", headers=bearer(admin)).text
        prefix = f'bastion_gateway_requests_total{{route="/v1/predict",status="{status}"}} '
        return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(prefix))

    ok, refused = counted("200"), counted("401")
    r = _predict(url, admin, {"inputs": digits[0][:1].tolist()})
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "application/json"
    denied = _predict(url, None, {"inputs": digits[0][:1].tolist()})
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
    assert denied.headers["x-content-type-options"] == "nosniff"
    assert (counted("200"), counted("401")) == (ok + 1, refused + 1)
    wrong_method = httpx.get(f"{url}/v1/predict", headers=bearer(admin))
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
