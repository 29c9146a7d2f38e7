"""Prometheus metrics of one gateway, in their own registry (so several apps, as in
tests, never collide in the global one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["GatewayMetrics"]

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class GatewayMetrics:
    """Request counts and latencies by route and status, and decisions on predictions."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "bastion_gateway_requests", "HTTP requests by route and status",
            ["route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "bastion_gateway_request_seconds", "Time to answer, by route",
            ["route"], buckets=_BUCKETS, registry=self.registry,
        )
        self.decisions = Counter(
            "bastion_gateway_decisions", "Prediction requests by decision",
            ["decision"], registry=self.registry,
        )
        self.rows = Counter(
            "bastion_gateway_predicted_rows", "Inputs predicted", registry=self.registry
        )
        self._decided: dict[str, Counter] = {}

    def decided(self, decision: str) -> None:
        """Count one prediction request by decision (the few labelled series are kept,
        rather than looked up under a lock on every request)."""
        series = self._decided.get(decision)
        if series is None:
            series = self._decided[decision] = self.decisions.labels(decision)
        series.inc()
