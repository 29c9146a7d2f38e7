"""Rate limits shared through a real ``redis-server`` started by the test: two gateway
instances (as two workers would be) enforce one limit together; when Redis goes away
requests fail closed with 503.

Needs ``redis-server`` (Debian ``redis-server``); skipped without it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    workdir = tempfile.mkdtemp(prefix="bastion-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def two_gateways(redis_url: str, tmp_path: Path) -> Callable[[], Any]:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from bastion.gateway.app import create_app
    from bastion.gateway.db import open_database
    from bastion.gateway.server import load_slot
    from bastion.gateway.settings import GatewaySettings

    x, y = load_iris(return_X_y=True)
    sio.dump(LogisticRegression(max_iter=200).fit(x / 8, y), tmp_path / "iris.skops")
    settings = GatewaySettings(model=str(tmp_path / "iris.skops"),
                               database_url=f"sqlite:///{tmp_path}/gw.db",
                               rate_limit_storage=redis_url, rate_limit_token="6/minute")
    db = open_database(settings.database_url)  # one database, as two workers would share
    return lambda: create_app(settings, models=load_slot(settings), db=db,
                              pepper=SecretStr("p"))


def _send(url: str, token: str) -> int:
    r = httpx.post(f"{url}/v1/predict", json={"inputs": [[0.5] * 4]},
                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return r.status_code


def test_limit_is_shared_by_two_instances(two_gateways: Callable[[], Any]) -> None:
    from bastion.gateway.server import running

    a, b = two_gateways(), two_gateways()
    token, _ = a.state.tokens.create(name="t", role="client")
    with running(a) as url_a, running(b) as url_b:
        codes = [_send(url, token) for url in [url_a, url_b] * 5]
        assert codes == [200] * 6 + [429] * 4  # 6/minute in total, not 6 per instance
        assert httpx.get(f"{url_a}/readyz").json()["checks"]["rate_limits"] is True


def test_redis_down_fails_closed(two_gateways: Callable[[], Any], redis_url: str) -> None:
    from bastion.gateway.server import running

    app = two_gateways()
    token, _ = app.state.tokens.create(name="t", role="client")
    with running(app) as url:
        assert _send(url, token) == 200
        port = int(redis_url.rsplit(":", 1)[1])
        import redis

        redis.Redis(port=port).shutdown(nosave=True)
        assert _send(url, token) == 503
        assert httpx.get(f"{url}/readyz").status_code == 503
