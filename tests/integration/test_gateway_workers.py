"""``bastion serve --workers 2``: two processes append to one audit chain on one SQLite
database; under concurrent load every acknowledged request is logged once and the chain
verifies (the head row serialises the writers), whether answers wait for the commit or
for each worker's own journal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("ack", ["commit", "journal"])
def test_two_workers_share_one_chain(tmp_path: Path, ack: str) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from bastion.gateway.audit import verify_chain
    from bastion.gateway.db import audit_records, open_database

    x, y = load_iris(return_X_y=True)
    sio.dump(LogisticRegression(max_iter=200).fit(x / 8, y), tmp_path / "iris.skops")
    env = {**os.environ, "BASTION_GATEWAY_PEPPER": "w", "OMP_NUM_THREADS": "1",
           "BASTION_GATEWAY_AUDIT_ACK": ack}
    db_url = f"sqlite:///{tmp_path}/audit.db"
    cli = [sys.executable, "-m", "bastion.cli.main"]
    token = subprocess.run([*cli, "gateway", "token", "create", "--name", "w", "--database-url",
                            db_url], env=env, capture_output=True, text=True, check=True
                           ).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([*cli, "serve", "--model", str(tmp_path / "iris.skops"), "--port",
                             str(port), "--workers", "2", "--database-url", db_url], env=env,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            time.sleep(0.2)

        def send(_: int) -> str:
            r = httpx.post(f"{url}/v1/predict", json={"inputs": [[0.4, 0.3, 0.5, 0.1]]},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert r.status_code == 200, r.text
            return str(r.json()["request_id"])

        with ThreadPoolExecutor(8) as pool:
            acked = list(pool.map(send, range(300)))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    db = open_database(db_url, create=False)
    with db.engine.connect() as conn:
        logged = list(conn.execute(select(audit_records.c.request_id)).scalars())
    assert sorted(logged) == sorted(acked)
    assert verify_chain(db).ok
