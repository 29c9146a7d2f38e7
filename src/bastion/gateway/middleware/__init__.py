"""The gateway's ASGI middleware, one per file."""

from __future__ import annotations

from bastion.gateway.middleware.body_limit import BodyLimitMiddleware
from bastion.gateway.middleware.metrics import MetricsMiddleware
from bastion.gateway.middleware.security_headers import SecurityHeadersMiddleware

__all__ = ["BodyLimitMiddleware", "MetricsMiddleware", "SecurityHeadersMiddleware"]
