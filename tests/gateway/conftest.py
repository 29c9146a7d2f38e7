"""Fixtures for gateway tests: a small digits model saved with skops, settings on a
throwaway SQLite database, and an app factory (serve it with ``bastion.gateway.server.running``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

PEPPER = SecretStr("test-pepper-not-secret")


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll until ``condition`` holds, for work a background thread or process finishes;
    fail with ``what`` if it never does. The bound only stops a hang: it is far above
    the time the work takes, and nothing here measures speed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(what)
        time.sleep(0.01)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory,
               digits: tuple[np.ndarray, np.ndarray]) -> Path:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x, y = digits
    path = tmp_path_factory.mktemp("model") / "digits.skops"
    sio.dump(LogisticRegression(max_iter=300).fit(x, y), path)
    return path


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, model_file: Path) -> Any:
    """Gateway settings on a database shared by one test module's apps."""
    from bastion.gateway.settings import GatewaySettings

    db = tmp_path_factory.mktemp("gw") / "gw.db"
    return GatewaySettings(model=str(model_file), database_url=f"sqlite:///{db}")


@pytest.fixture(scope="module")
def make_app(settings: Any) -> Callable[..., Any]:
    from bastion.gateway.app import create_app
    from bastion.gateway.server import load_slot

    def make(**kw: Any) -> Any:
        s = kw.pop("settings", settings)
        return create_app(s, models=kw.pop("models", None) or load_slot(s), pepper=PEPPER, **kw)

    return make
