"""The admin dashboard over real HTTP: who may see it, the session cookie, a
self-contained page with a strict CSP, and the page rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression

from bastion.gateway.incidents import Alarm, Kind, Level
from bastion.gateway.monitor import MonitorSettings, monitored_app
from bastion.gateway.server import running
from bastion.gateway.settings import GatewaySettings
from bastion.gateway.slots import ModelSlot, ModelVersion
from bastion.models.sklearn import SklearnClassifier

CHROMIUM = shutil.which("chromium")
HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory,
            digits: tuple[np.ndarray, np.ndarray]) -> Iterator[dict[str, Any]]:
    x, y = digits
    order = np.random.default_rng(0).permutation(len(x))
    model = SklearnClassifier(LogisticRegression(max_iter=300).fit(x[order[:1000]],
                                                                   y[order[:1000]]))
    db = tmp_path_factory.mktemp("dash") / "gw.db"
    app = monitored_app(GatewaySettings(database_url=f"sqlite:///{db}"),
                        models=ModelSlot(ModelVersion("digits-v1", model)),
                        monitor=MonitorSettings(drift_window=100, drift_every=50),
                        reference=x[order[1000:1400]],
                        pepper=SecretStr("test-pepper-not-secret"), notifiers=[])
    tokens = {role: str(app.state.tokens.create(name=role, role=role)[0])
              for role in ("admin", "client")}
    with running(app) as url:
        yield {"app": app, "url": url, "x": x[order[1400:]], **tokens}


def _get(gw: dict[str, Any], path: str, token: str | None = None,
         **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(gw["url"] + path, headers=headers, timeout=10, **kw)


def test_only_admins_see_the_dashboard(gateway: dict[str, Any]) -> None:
    assert _get(gateway, "/dashboard").status_code == 401
    assert "Admin API token" in _get(gateway, "/dashboard").text  # the sign-in form
    assert _get(gateway, "/dashboard", gateway["client"]).status_code == 403
    assert _get(gateway, "/dashboard", "bst_0123456789abcdef_forged").status_code == 401
    page = _get(gateway, "/dashboard", gateway["admin"])
    assert page.status_code == 200 and "<svg" in page.text
    for path in ("/dashboard/api/summary",):
        assert _get(gateway, path).status_code == 401
        assert _get(gateway, path, gateway["client"]).status_code == 403
        data = _get(gateway, path, gateway["admin"]).json()
        assert set(data) >= {"requests", "drift", "clients", "incidents", "thresholds",
                             "decisions"}


def test_page_is_self_contained_under_a_nonce_csp(gateway: dict[str, Any]) -> None:
    page = _get(gateway, "/dashboard", gateway["admin"])
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp)
    assert nonce and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert page.text.count(f'nonce="{nonce.group(1)}"') == 2  # one style, one script
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assert "<link" not in page.text and "@import" not in page.text
    again = _get(gateway, "/dashboard", gateway["admin"]).headers["content-security-policy"]
    assert again != csp  # a fresh nonce per response


def test_session_cookie_signs_in_and_revocation_signs_out(gateway: dict[str, Any]) -> None:
    app, url = gateway["app"], gateway["url"]
    admin, _ = app.state.tokens.create(name="short-lived", role="admin")
    refused = httpx.post(f"{url}/dashboard/session", json={"token": gateway["client"]})
    assert refused.status_code == 403
    signed = httpx.post(f"{url}/dashboard/session", json={"token": admin})
    assert signed.status_code == 200 and admin not in signed.text
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    session = dict(signed.cookies)
    assert httpx.get(f"{url}/dashboard/api/summary", cookies=session).status_code == 200
    app.state.controls.revoke_token(admin.split("_")[1])
    assert httpx.get(f"{url}/dashboard/api/summary", cookies=session).status_code == 401
    forged = {"bastion_dashboard": "made-up"}
    assert httpx.get(f"{url}/dashboard/api/summary", cookies=forged).status_code == 401


def _traffic(gateway: dict[str, Any]) -> None:
    """Natural queries from one client, random ones from another, a hostile incident."""
    app, x = gateway["app"], gateway["x"]
    benign, noisy = (str(app.state.tokens.create(name=n, role="client")[0])
                     for n in ("benign", "noisy"))
    noise = np.random.default_rng(0).uniform(size=(80, 64))
    for start in range(0, 300, 10):
        for token, rows in ((benign, x[start : start + 10]), (noisy, noise[start : start + 10])):
            if len(rows):
                httpx.post(gateway["url"] + "/v1/predict", json={"inputs": rows.tolist()},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
    app.state.monitor.flush()
    refused = httpx.post(gateway["url"] + "/v1/predict", json={"inputs": noise[:1].tolist()},
                         headers={"Authorization": f"Bearer {noisy}"}, timeout=10)
    assert refused.status_code == 403  # blocked once its requests were scored
    app.state.monitor._sink.handle(Alarm(kind=Kind.ADVERSARIAL, level=Level.THROTTLE,
                                         subject_kind="client", subject=HOSTILE, risk=0.6,
                                         summary=f"hostile {HOSTILE}", time=time.time()))


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_dashboard_renders_live_data_in_headless_chromium(gateway: dict[str, Any],
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    _traffic(gateway)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(gateway["url"] + "/dashboard")
            page.fill("#token", gateway["admin"])
            page.click("button[type=submit]")
            page.wait_for_selector("#incidents td.num", timeout=15_000)
            page.wait_for_selector("#chart-rate path", timeout=15_000)
            page.wait_for_timeout(300)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            incidents = page.inner_text("#incidents")
            clients = page.inner_text("#clients")
            title = page.title()
            n_img = page.locator("img").count()
            n_bars = page.locator("#chart-risk rect").count()
            blocked = page.inner_text("#c-blocked")
            decisions = page.inner_text("#decisions")
        finally:
            browser.close()
    # The sign-in page answers 401 and there is no favicon: the browser logs both as
    # failed loads. Anything else (a CSP refusal, a script error) is a bug.
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []
    assert "extraction" in incidents and "block" in incidents
    assert HOSTILE in incidents and n_img == 0 and title != "pwned"  # shown, not run
    assert "token" in clients and n_bars >= 2 and blocked == "1"
    assert "allow" in decisions and "blocked" in decisions  # refused requests counted too
    shot = (tmp_path / "dashboard.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 50_000
