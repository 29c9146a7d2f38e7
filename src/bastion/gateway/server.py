"""Load the model(s) the settings name and serve them with uvicorn.

With ``workers > 1`` uvicorn starts that many processes, each building its own app from
the same settings (passed in the environment, which holds no secret: the pepper is read
by each worker from where the settings say). Use Redis rate-limit storage then, so the
limits hold across workers.

The runtime monitor (drift, adversarial inputs, extraction; incident response and the
admin dashboard come with it) is switched on by a ``[monitor]`` table in the same TOML
file: :func:`build_app` is where ``bastion serve`` wires it in.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from bastion.errors import ConfigError
from bastion.gateway.app import create_app
from bastion.gateway.settings import GatewaySettings
from bastion.gateway.slots import ModelSlot, ModelVersion

if TYPE_CHECKING:
    from bastion.gateway.monitor import MonitorSettings

__all__ = ["build_app", "load_slot", "monitor_settings", "running", "serve"]

_SETTINGS_ENV = "BASTION_GATEWAY__WORKER_SETTINGS"
_CONFIG_ENV = "BASTION_GATEWAY__WORKER_CONFIG"


def load_slot(settings: GatewaySettings) -> ModelSlot:
    """The served model (and the previous version, if named), via the safe loaders."""
    if settings.model is None:
        raise ConfigError("no model to serve: pass --model or set model in [gateway]")
    current = _load(settings.model, settings)
    previous = _load(settings.previous_model, settings) if settings.previous_model else None
    slot = ModelSlot(previous) if previous is not None else None
    if slot is None:
        return ModelSlot(current)
    slot.deploy(current)  # checks the two versions take the same inputs
    return slot


def _load(source: str, settings: GatewaySettings) -> ModelVersion:
    from bastion.models import load_model

    model = load_model(source, input_shape=settings.input_shape, n_classes=settings.n_classes,
                       bounds=settings.bounds, factory=settings.factory)
    return ModelVersion(Path(source).name, model)


def monitor_settings(config: Path | None) -> MonitorSettings | None:
    """The runtime monitor's settings when ``[monitor]`` is in the TOML file (or
    ``BASTION_MONITOR_REFERENCE`` is set); ``None`` serves without a monitor."""
    import tomllib

    from bastion.cli._settings import resolve
    from bastion.gateway.monitor import MonitorSettings

    in_file = config is not None and "monitor" in tomllib.loads(
        config.read_text(encoding="utf-8"))
    if not in_file and not os.environ.get("BASTION_MONITOR_REFERENCE"):
        return None
    return resolve(MonitorSettings, "monitor", {}, config)


def build_app(settings: GatewaySettings, config: Path | None) -> FastAPI:
    """The gateway as configured: with the monitor, incident response and dashboard when
    ``[monitor]`` is set, the bare secure gateway otherwise."""
    models = load_slot(settings)
    monitor = monitor_settings(config)
    if monitor is None:
        return create_app(settings, models=models)
    from bastion.gateway.monitor import monitored_app

    return monitored_app(settings, models=models, monitor=monitor)


def serve(settings: GatewaySettings, *, config: Path | None = None) -> None:
    """Serve until interrupted (binds to ``settings.host``, 127.0.0.1 by default)."""
    import uvicorn

    common = {"host": settings.host, "port": settings.port, "log_level": "warning",
              "server_header": False, "access_log": False,
              "proxy_headers": bool(settings.trusted_proxies),
              "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None}
    if settings.workers == 1:
        uvicorn.run(build_app(settings, config), **common)  # type: ignore[arg-type]
        return
    os.environ[_SETTINGS_ENV] = settings.model_dump_json()
    os.environ[_CONFIG_ENV] = str(config or "")
    uvicorn.run("bastion.gateway.server:worker_app", factory=True, workers=settings.workers,
                **common)  # type: ignore[arg-type]


def worker_app() -> FastAPI:
    """uvicorn's factory in each worker process."""
    settings = GatewaySettings.model_validate_json(os.environ[_SETTINGS_ENV])
    config = os.environ.get(_CONFIG_ENV) or None
    return build_app(settings, Path(config) if config else None)


@contextmanager
def running(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0,
            timeout_s: float = 20.0) -> Iterator[str]:
    """Serve ``app`` from a background thread (tests, notebooks); yields its base URL.

    ``port=0`` picks a free port. The server stops, and the app's shutdown runs, on exit.
    """
    import uvicorn

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on", proxy_headers=False))
    thread = threading.Thread(target=server.run, name="bastion-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the gateway did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)
