"""Audit durability across ``kill -9``: ``bastion serve`` under load from 8 client
threads is killed without warning, several times, on one SQLite audit database (WAL,
synchronous=FULL), once per ``audit_ack`` mode: ``commit`` (answers wait for the commit)
and ``journal`` (the default: answers wait for the local journal, which the restarted
server replays). After each kill the server restarts; at the end every acknowledged
request id must be in the log and the chain must verify.

Run: benchmarks/gateway/kill9.py [--kills 5] [--ack commit journal]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bastion.gateway.audit import verify_chain
from bastion.gateway.db import audit_records, open_database

HERE = Path(__file__).parent
PY = sys.executable


def serve(model: Path, port: int, db_url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([PY, "-m", "bastion.cli.main", "serve", "--model", str(model),
                             "--port", str(port), "--database-url", db_url], env=env,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("bastion serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--ack", nargs="+", choices=("commit", "journal"),
                        default=["commit", "journal"])
    args = parser.parse_args()
    results = {ack: run(args.kills, ack) for ack in args.ack}
    (HERE / "kill9.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def run(kills: int, ack: str) -> dict[str, object]:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = Path(tempfile.mkdtemp(prefix="bastion-kill9-"))
    x, y = load_iris(return_X_y=True)
    model = root / "iris.skops"
    sio.dump(LogisticRegression(max_iter=200).fit(x / 8, y), model)
    env = {**os.environ, "BASTION_GATEWAY_PEPPER": "kill9", "OMP_NUM_THREADS": "1",
           "BASTION_GATEWAY_AUDIT_ACK": ack,
           "BASTION_GATEWAY_RATE_LIMIT_TOKEN": "1000000/minute",
           "BASTION_GATEWAY_RATE_LIMIT_CLIENT": "1000000/minute"}
    db_url = f"sqlite:///{root}/audit.db"
    token = subprocess.run([PY, "-m", "bastion.cli.main", "gateway", "token", "create",
                            "--name", "load", "--database-url", db_url], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    acked: list[str] = []
    lock = threading.Lock()
    rng = random.Random(0)
    per_kill = []
    replayed = []  # records only in the journal at a kill, committed by the restart
    at_kill: int | None = None
    for kill in range(kills):
        proc = serve(model, port, db_url, env)
        if at_kill is not None:
            replayed.append(n_logged(db_url) - at_kill)
        stop = threading.Event()

        def load(stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                while not stop.is_set():
                    try:
                        r = client.post("/v1/predict", json={"inputs": [[0.4, 0.3, 0.5, 0.1]]})
                    except httpx.TransportError:
                        return
                    if r.status_code == 200:
                        with lock:
                            acked.append(r.json()["request_id"])

        threads = [threading.Thread(target=load) for _ in range(8)]
        before = len(acked)
        for t in threads:
            t.start()
        time.sleep(rng.uniform(2.0, 5.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
        per_kill.append(len(acked) - before)
        at_kill = n_logged(db_url)
        print(f"{ack} kill {kill}: {per_kill[-1]} requests acknowledged before kill -9",
              flush=True)
    proc = serve(model, port, db_url, env)  # the restart after the last kill
    replayed.append(n_logged(db_url) - (at_kill or 0))
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    db = open_database(db_url, create=False)
    with db.engine.connect() as conn:
        logged = set(conn.execute(select(audit_records.c.request_id)).scalars())
    chain = verify_chain(db)
    result = {"kills": kills, "acknowledged": len(acked), "per_kill": per_kill,
              "replayed_at_restart": replayed, "logged": len(logged),
              "lost": len(set(acked) - logged), "chain_intact": chain.ok,
              "chain_records": chain.n_records}
    shutil.rmtree(root, ignore_errors=True)
    return result


def n_logged(db_url: str) -> int:
    db = open_database(db_url, create=False)
    try:
        with db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_records)).scalar_one())
    finally:
        db.engine.dispose()


if __name__ == "__main__":
    main()
