"""Count every HTTP request and time it, labelled by route template (never by raw path,
which a client controls and could use to blow up the number of series)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.gateway.metrics import GatewayMetrics

__all__ = ["MetricsMiddleware"]


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics, routes: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self._cache: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in self.routes else "other"
        status = 500
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            count, timing = self._series(route, status)
            count.inc()
            timing.observe(time.perf_counter() - started)

    def _series(self, route: str, status: int) -> tuple[Counter, Histogram]:
        # labels() takes a lock and builds a key on every call; routes and statuses are few
        series = self._cache.get((route, status))
        if series is None:
            series = (self.metrics.requests.labels(route, str(status)),
                      self.metrics.latency.labels(route))
            self._cache[(route, status)] = series
        return series
