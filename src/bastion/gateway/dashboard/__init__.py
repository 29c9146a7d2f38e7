"""The monitoring dashboard the gateway serves to ``admin`` tokens at ``/dashboard``.

A self-contained page (inline CSS, JavaScript and SVG charts: nothing fetched from
elsewhere) that polls ``/dashboard/api/summary`` for request rate, latency, drift,
client risk and incidents.
"""

from __future__ import annotations

from bastion.gateway.dashboard.router import dashboard_router

__all__ = ["dashboard_router"]
