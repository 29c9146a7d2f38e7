"""The gateway's audit log on a real PostgreSQL server started by the test: the chain
holds under concurrent requests, and when the database goes away requests fail closed
(503), nothing acknowledged is lost and the chain still verifies after it returns. Both
with answers that wait for the commit and with answers that wait for the local journal
(where the requests journaled before the gateway finds the database gone are answered,
and committed once it is back).

Needs the PostgreSQL server binaries (Debian ``postgresql``); skipped without them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

pytestmark = pytest.mark.slow


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


class _Cluster:
    """A throwaway PostgreSQL cluster in a temporary folder on a free loopback port."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        # initdb refuses to run as root: run the server as the postgres (or nobody) user
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres" if _has_user("postgres") else "nobody"
            os.chown(self.root, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
            self.prefix = ["runuser", "-u", user, "--"]
        self._run("initdb", "-D", str(self.root / "data"), "-U", "bastion", "--auth=trust",
                  "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://bastion@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-w", "-l", str(self.root / "log"),
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bindir / tool), *args], check=True,
                       capture_output=True, timeout=120)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster() -> Iterator[_Cluster]:
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (pg_ctl, initdb) are not installed")
    c = _Cluster(bindir)
    c.start()
    try:
        yield c
    finally:
        try:
            c.stop()
        finally:
            shutil.rmtree(c.root, ignore_errors=True)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    path = tmp_path_factory.mktemp("m") / "digits.skops"
    sio.dump(LogisticRegression(max_iter=200).fit(x[:600] / 16, y[:600]), path)
    return path


@pytest.fixture(params=["commit", "journal"])
def gateway(cluster: _Cluster, model_file: Path, tmp_path: Path,
            request: pytest.FixtureRequest) -> Iterator[tuple[Any, str, Callable[[], str]]]:
    from bastion.gateway.app import create_app
    from bastion.gateway.server import load_slot, running
    from bastion.gateway.settings import GatewaySettings

    settings = GatewaySettings(model=str(model_file), database_url=cluster.url,
                               audit_ack=request.param, audit_journal_dir=tmp_path / "journal")
    app = create_app(settings, models=load_slot(settings), pepper=SecretStr("p"))
    with running(app) as url:
        yield app, url, lambda: str(app.state.tokens.create(name="t", role="client")[0])


def _send(url: str, token: str, n: int = 1) -> httpx.Response:
    return httpx.post(f"{url}/v1/predict", json={"inputs": [[0.5] * 64] * n},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_concurrent_requests_chain_in_postgres(gateway: Any) -> None:
    from bastion.gateway.audit import verify_chain
    from bastion.gateway.db import audit_records

    app, url, new_token = gateway
    token = new_token()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _send(url, token), range(80)))
    assert all(a.status_code == 200 for a in answers)
    acked = {a.json()["request_id"] for a in answers}
    db = app.state.db
    _wait_logged(db, acked)
    assert verify_chain(db).ok
    one = audit_records.c.request_id == min(acked)
    with db.engine.connect() as conn:
        original = conn.execute(select(audit_records.c.prediction).where(one)).scalar_one()
    with db.writing() as conn:  # tamper with one record
        conn.execute(update(audit_records).where(one).values(prediction="[3]"))
    assert any("changed" in p for p in verify_chain(db).problems)
    with db.writing() as conn:  # and undo it, for the next test
        conn.execute(update(audit_records).where(one).values(prediction=original))


def _wait_logged(db: Any, acked: set[str]) -> set[str]:
    """What the log holds once ``acked`` is in it (journaled answers are committed
    moments after they are sent)."""
    deadline = time.monotonic() + 10
    while not acked <= (logged := _logged(db)):
        assert time.monotonic() < deadline, f"{len(acked - logged)} acknowledged not logged"
        time.sleep(0.05)
    return logged


def _logged(db: Any) -> set[str]:
    from bastion.gateway.db import audit_records

    with db.engine.connect() as conn:
        return set(conn.execute(select(audit_records.c.request_id)).scalars())


def test_database_going_away_fails_closed(gateway: Any, cluster: _Cluster) -> None:
    from bastion.gateway.audit import verify_chain
    from bastion.gateway.db import open_database

    app, url, new_token = gateway
    token = new_token()
    before = _send(url, token)
    assert before.status_code == 200
    cluster.stop()
    try:
        down: list[httpx.Response] = []
        deadline = time.monotonic() + 30
        while sum(r.status_code == 503 for r in down) < 5:
            down.append(_send(url, token))
            assert time.monotonic() < deadline, [r.status_code for r in down]
        codes = [r.status_code for r in down]
        n_acked = codes.index(503)
        assert codes[n_acked:] == [503] * (len(codes) - n_acked)  # refused until it is back
        if app.state.settings.audit_ack == "commit":
            assert n_acked == 0
        assert all("outputs" not in r.json() for r in down[n_acked:])  # no prediction leaks
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 503
    finally:
        cluster.start()
    deadline = time.monotonic() + 30
    while (after := _send(url, token)).status_code != 200:
        assert time.monotonic() < deadline, after.text
        time.sleep(0.2)
    db = open_database(cluster.url)
    logged = _wait_logged(db, {r.json()["request_id"] for r in [before, *down[:n_acked], after]})
    assert not {r.json()["request_id"] for r in down[n_acked:]} & logged
    assert verify_chain(db).ok
