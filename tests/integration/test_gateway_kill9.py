"""``kill -9`` under load: every request the gateway acknowledged is in the audit log
after a restart, and the chain verifies (``bastion audit verify`` exits 0); with answers
that wait for the database commit and with answers that wait for the local journal
(replayed at the restart).

The server runs as ``bastion serve`` in a subprocess, with the token created by
``bastion gateway token create``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

pytestmark = pytest.mark.slow


def _bastion(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bastion.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def _serve(model: Path, port: int, db_url: str, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bastion.cli.main", "serve", "--model", str(model),
         "--port", str(port), "--database-url", db_url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"bastion serve exited: {proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, "bastion serve did not start"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("m") / "iris.skops"
    sio.dump(LogisticRegression(max_iter=200).fit(x / 8, y), path)
    return path


@pytest.mark.parametrize("ack", ["commit", "journal"])
def test_no_acknowledged_request_is_lost_after_kill_9(model_file: Path, tmp_path: Path,
                                                      ack: str) -> None:
    from bastion.gateway.audit import verify_chain
    from bastion.gateway.db import audit_records, open_database

    env = {**os.environ, "BASTION_GATEWAY_PEPPER": "kill9-pepper",
           "BASTION_GATEWAY_AUDIT_ACK": ack,
           "BASTION_GATEWAY_RATE_LIMIT_TOKEN": "100000/minute",
           "BASTION_GATEWAY_RATE_LIMIT_CLIENT": "100000/minute"}
    db_url = f"sqlite:///{tmp_path}/audit.db"
    made = _bastion("gateway", "token", "create", "--name", "load", "--role", "client",
                    "--database-url", db_url, env=env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = _serve(model_file, port, db_url, env)

    acked: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            while not stop.is_set():
                try:
                    r = client.post("/v1/predict", json={"inputs": [[0.4, 0.3, 0.5, 0.1]]})
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acked.append(r.json()["request_id"])

    workers = [threading.Thread(target=load) for _ in range(8)]
    for w in workers:
        w.start()
    while len(acked) < 200 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-load, without warning
    proc.wait()
    stop.set()
    for w in workers:
        w.join()
    assert len(acked) >= 200

    proc = _serve(model_file, port, db_url, env)  # restart on the same database
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"inputs": [[0.1] * 4]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200
        acked.append(r.json()["request_id"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    db = open_database(db_url, create=False)
    with db.engine.connect() as conn:
        logged = set(conn.execute(select(audit_records.c.request_id)).scalars())
    assert set(acked) <= logged, f"{len(set(acked) - logged)} acknowledged records lost"
    assert verify_chain(db).ok
    verified = _bastion("audit", "verify", "--database-url", db_url, env=env)
    assert verified.returncode == 0 and "intact" in verified.stdout
