"""The dashboard's routes and its admin-only access.

A browser cannot send a bearer header when it opens a page, so an admin pastes a token
once into the login form; ``POST /dashboard/session`` checks it (API token or JWT, with
the ``admin`` scope) and sets a random session cookie (HttpOnly, SameSite=Strict, Path
``/dashboard``, Secure over HTTPS) whose hash maps, in this process's memory only, to
the token. Every later request re-checks the token, so revoking it ends the session.
API clients may instead send ``Authorization: Bearer`` on every request.

Pages carry a Content-Security-Policy with a per-response nonce: only the page's own
inline script and style run, and data reaches the page only as JSON rendered with
``textContent``, never as markup.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from importlib import resources
from typing import Any

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, SecretStr
from starlette.requests import Request as StarletteRequest

from bastion.gateway.auth import AccessDeniedError, Authenticator, Principal
from bastion.gateway.incidents.store import IncidentStore

__all__ = ["dashboard_router"]

_COOKIE = "bastion_dashboard"
_SESSION_S = 8 * 3600


class _Login(BaseModel):
    token: SecretStr


class _Sessions:
    """Session id hash → (token, expiry), in memory; ids are never stored in clear."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[SecretStr, float]] = {}
        self._lock = threading.Lock()

    def open(self, token: SecretStr) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._items = {k: v for k, v in self._items.items() if v[1] > now}
            self._items[_digest(sid)] = (token, now + _SESSION_S)
        return sid

    def token(self, sid: str) -> SecretStr | None:
        with self._lock:
            item = self._items.get(_digest(sid))
        if item is None or item[1] <= time.time():
            return None
        return item[0]

    def close(self, sid: str) -> None:
        with self._lock:
            self._items.pop(_digest(sid), None)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _as_bearer(token: SecretStr) -> StarletteRequest:
    """A request carrying ``token`` as its bearer header, for the gateway's authenticator."""
    header = f"Bearer {token.get_secret_value()}".encode("latin-1", "replace")
    return StarletteRequest({"type": "http", "headers": [(b"authorization", header)]})


def _decisions(metrics: Any) -> dict[str, int]:
    """Prediction requests by the gateway's decision (allow, blocked, rate-limited...),
    refused ones included, since the process started."""
    if metrics is None:
        return {}
    return {sample.labels["decision"]: int(sample.value)
            for family in metrics.decisions.collect() for sample in family.samples
            if sample.name.endswith("_total")}


def _admin_of(auth: Authenticator, request: Request) -> Principal:
    principal = auth.authenticate(request)
    principal.require("admin")
    return principal


_env = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: resources.files("bastion.gateway.dashboard").joinpath(name)
        .read_text(encoding="utf-8")),
    autoescape=True, undefined=jinja2.StrictUndefined,
)


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template(name).render(nonce=nonce, **context)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": csp})


def dashboard_router() -> APIRouter:
    """Routes under ``/dashboard``; they read ``app.state.monitor`` (its snapshot) and
    ``app.state.incidents`` (the incident store)."""
    router = APIRouter(prefix="/dashboard", include_in_schema=False)
    sessions = _Sessions()

    def principal(request: Request) -> Principal | None:
        """The admin behind the request, None if nobody; 403 for a non-admin."""
        auth: Authenticator = request.app.state.auth
        try:
            if request.headers.get("authorization"):
                return _admin_of(auth, request)
            sid = request.cookies.get(_COOKIE)
            token = sessions.token(sid) if sid else None
            if token is None:
                return None
            return _admin_of(auth, _as_bearer(token))
        except AccessDeniedError as err:
            if err.status == 401:
                return None
            raise HTTPException(403, err.message) from None

    def admin(who: Principal | None = Depends(principal)) -> Principal:
        if who is None:
            raise HTTPException(401, "sign in with an admin token",
                                headers={"WWW-Authenticate": "Bearer"})
        return who

    @router.get("")
    def page(who: Principal | None = Depends(principal)) -> Response:
        if who is None:
            return _page("login.html.j2", status=401)
        return _page("dashboard.html.j2", token_id=who.token_id)

    @router.post("/session")
    def login(body: _Login, request: Request) -> Response:
        auth: Authenticator = request.app.state.auth
        try:
            who = _admin_of(auth, _as_bearer(body.token))
        except AccessDeniedError as err:
            return JSONResponse({"detail": err.message}, status_code=err.status)
        response = JSONResponse({"token_id": who.token_id, "role": who.role})
        response.set_cookie(_COOKIE, sessions.open(body.token), max_age=_SESSION_S,
                            path="/dashboard", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        sid = request.cookies.get(_COOKIE)
        if sid:
            sessions.close(sid)
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(_COOKIE, path="/dashboard")
        return response

    @router.get("/api/summary")
    def summary(request: Request, _: Principal = Depends(admin)) -> dict[str, Any]:
        data: dict[str, Any] = request.app.state.monitor.snapshot()
        store: IncidentStore | None = getattr(request.app.state, "incidents", None)
        data["incidents"] = [i.as_dict() for i in store.list(limit=25)] if store else []
        data["decisions"] = _decisions(getattr(request.app.state, "metrics", None))
        return data

    return router
