"""The audit journal: records of a killed process are replayed into the chain once, live
journals are left alone, a torn last line is ignored, and while the database refuses
records new ones are refused (fail closed) and the journaled ones are committed later."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.gateway.conftest import wait_until

from bastion.gateway import audit_committer
from bastion.gateway.audit import AuditEntry, AuditLog, AuditUnavailableError, verify_chain
from bastion.gateway.audit_chain import ChainWriter
from bastion.gateway.db import Database, audit_records, open_database
from bastion.gateway.journal import Journal, journal_folder, orphans


def _entry(i: int) -> AuditEntry:
    return AuditEntry(request_id=f"req{i:04d}", time=1_700_000_000.25 + i, token_id="t1",
                      role="client", client="127.0.0.1", input_sha256="ab" * 32,
                      prediction=f"[{i % 10}]", latency_ms=1.5, decision="allow")


def _logged(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(select(audit_records.c.request_id)).scalars())


_KILLED = """
import os, signal, sys
from pathlib import Path
from bastion.gateway.audit import AuditEntry, AuditLog
from bastion.gateway.db import open_database
from bastion.gateway.journal import Journal

log = AuditLog(open_database(sys.argv[1]), journal=Journal(Path(sys.argv[2])))
for i in range(100):
    log.write(AuditEntry(f"req{i:04d}", 1.7e9 + i, "t1", "client", "127.0.0.1", "ab" * 32,
                         "[1]", 1.5, "allow"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_records_of_a_killed_process_are_replayed_once(tmp_path: Path) -> None:
    url, folder = f"sqlite:///{tmp_path}/a.db", tmp_path / "journal"
    db = open_database(url)
    # Hold the write lock, so the killed process's writer commits nothing at all.
    blocker = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    run = subprocess.run([sys.executable, "-c", _KILLED, url, str(folder)],
                         capture_output=True, timeout=120)
    blocker.rollback()
    blocker.close()
    assert run.returncode == -9, run.stderr
    assert _logged(db) == set()

    log = AuditLog(db, journal=Journal(folder))
    log.close()

    assert _logged(db) == {f"req{i:04d}" for i in range(100)}
    result = verify_chain(db)
    assert result.ok and result.n_records == 100, result.problems
    assert list(folder.iterdir()) == []
    AuditLog(db, journal=Journal(folder)).close()  # nothing left to replay twice
    assert verify_chain(db).n_records == 100


def test_a_replay_racing_the_dead_process_committer_checks_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead server's committer can still land a batch while the restarted server
    replays: the replay's batch then breaks on the unique request ids, and it checks
    the log again instead of failing the start."""
    db = open_database(f"sqlite:///{tmp_path}/a.db")
    folder = tmp_path / "journal"
    dead = Journal(folder)
    for i in range(20):
        dead.append(_entry(i).values())
    dead.close(0)  # left for a replay
    log = AuditLog(db)
    for i in range(10):  # what the dead server's committer landed meanwhile
        log.write(_entry(i))
    log.close()
    real_known = ChainWriter.known
    calls: list[int] = []

    def stale_once(self: ChainWriter, request_ids: list[str]) -> set[str]:
        calls.append(len(request_ids))
        return set() if len(calls) == 1 else real_known(self, request_ids)

    monkeypatch.setattr(ChainWriter, "known", stale_once)
    AuditLog(db, journal=Journal(folder)).close()
    assert len(calls) >= 2
    assert _logged(db) == {f"req{i:04d}" for i in range(20)}
    result = verify_chain(db)
    assert result.ok and result.n_records == 20, result.problems


def test_a_live_journal_is_not_replayed(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append(_entry(1).values())
    assert list(orphans(tmp_path)) == []
    journal.close(0)  # uncommitted: stays for a replay
    assert [r[0] for records in orphans(tmp_path) for r in records] == ["req0001"]
    assert list(tmp_path.iterdir()) == []


def test_a_torn_last_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "1-dead-000001.journal").write_bytes(
        b'["req0001",1.0,null,null,"c","ab",".",1.0,"allow"]\n["req0002",2.0,nu')
    assert [[r[0] for r in records] for records in orphans(tmp_path)] == [["req0001"]]


def test_full_segments_are_dropped_once_committed(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=300)
    for i in range(6):
        journal.append(_entry(i).values())
    assert len(list(tmp_path.glob("*.journal"))) == 3
    journal.committed(4)
    assert len(list(tmp_path.glob("*.journal"))) == 1
    journal.close(6)
    assert list(tmp_path.iterdir()) == []


def test_batches_commit_quick_and_segments_wait_for_a_durable_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a journal, batches commit without an fsync (the writer's connection runs at
    SQLite's synchronous=NORMAL, not the configured FULL) and the journal drops records
    only once a commit at the configured level has covered them: every second, and when
    the log closes."""
    monkeypatch.setattr(audit_committer, "_DURABLE_EVERY_S", 3600.0)
    db = open_database(f"sqlite:///{tmp_path}/a.db")
    folder = tmp_path / "journal"
    log = AuditLog(db, journal=Journal(folder, segment_bytes=400))
    assert log.committer is not None
    raw, _ = log.committer.chain.connection()  # the writer's, before it has anything to write
    assert raw.driver_connection.execute("PRAGMA synchronous").fetchone() == (1,)
    statements: list[str] = []
    raw.driver_connection.set_trace_callback(statements.append)
    for i in range(20):
        log.write(_entry(i))
    wait_until(lambda: len(_logged(db)) == 20, "the batches were not committed")
    n_segments = len(list(folder.glob("*.journal")))
    assert n_segments >= 5  # committed, not yet durable: all kept
    assert "BEGIN IMMEDIATE" in statements
    assert not [s for s in statements if "synchronous" in s]  # nothing more per batch

    monkeypatch.setattr(audit_committer, "_DURABLE_EVERY_S", 0.0)
    log.write(_entry(20))
    wait_until(lambda: log.progress.durable == 21, "no durable commit came")
    monkeypatch.setattr(audit_committer, "_DURABLE_EVERY_S", 3600.0)
    log.write(_entry(21))  # the server drops what is durable as it appends
    assert len(list(folder.glob("*.journal"))) <= 2  # what holds records 20 and 21
    touch = statements.index("UPDATE gateway_audit_head SET seq = seq WHERE id = 1")
    assert statements[touch - 2:touch] == ["PRAGMA synchronous=2", "BEGIN IMMEDIATE"]
    assert statements[touch + 1:touch + 3] == ["COMMIT", "PRAGMA synchronous=1"]

    log.close()  # closing makes the last commits durable: nothing is left to replay
    assert list(folder.glob("*.journal")) == []
    assert len(_logged(db)) == 22
    assert verify_chain(db).ok
    with db.engine.connect() as conn:  # the writer's quick connection is not reused
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_a_commit_that_landed_although_its_answer_was_lost_is_not_repeated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database server can commit a batch and go down before saying so: the writer
    retries, finds the records already there and moves on (retrying them as new ones
    would break on their unique request ids and refuse requests for good)."""
    db = open_database(f"sqlite:///{tmp_path}/a.db")
    log = AuditLog(db, journal=Journal(tmp_path / "journal"))
    assert log.committer is not None
    chain = log.committer.chain
    working = chain.append
    lost = []

    def commit_then_lose_the_answer(entries: list[AuditEntry], *, durable: bool = False) -> None:
        working(entries, durable=durable)
        if not lost:
            lost.append(len(entries))
            raise OSError("connection reset after the commit")

    monkeypatch.setattr(chain, "append", commit_then_lose_the_answer)
    for i in range(5):
        log.write(_entry(i))
    wait_until(lambda: log.progress.committed == 5, "the writer did not get past it")
    assert lost and not log.progress.failing
    log.write(_entry(5))
    log.close()
    assert _logged(db) == {f"req{i:04d}" for i in range(6)}
    assert verify_chain(db).ok


def test_refused_batches_fail_closed_and_commit_later(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_database(f"sqlite:///{tmp_path}/a.db")
    log = AuditLog(db, journal=Journal(tmp_path / "journal"))
    assert log.committer is not None
    chain = log.committer.chain
    working = chain.append

    def refuse(entries: list[AuditEntry], *, durable: bool = False) -> None:
        raise OSError("the database is gone")

    monkeypatch.setattr(chain, "append", refuse)
    assert log.healthy()
    log.write(_entry(1))  # journaled before the writer has tried: acknowledged
    with pytest.raises(AuditUnavailableError):
        for i in range(2, 1000):  # until the writer has found out
            log.write(_entry(i))
            time.sleep(0.01)
    assert not log.healthy()  # /readyz says so
    monkeypatch.setattr(chain, "append", working)

    def accepted() -> bool:
        try:
            log.write(_entry(9999))
        except AuditUnavailableError:
            return False
        return True

    wait_until(accepted, "the writer did not recover")
    assert log.healthy()
    log.close()
    assert not log.healthy()
    logged = _logged(db)
    assert {"req0001", "req9999"} <= logged
    assert verify_chain(db).ok


def test_journal_sits_beside_a_sqlite_file_or_must_be_named(tmp_path: Path) -> None:
    from bastion.errors import ConfigError

    assert journal_folder(f"sqlite:///{tmp_path}/g.db", None) == tmp_path / "g.db.audit-journal"
    assert journal_folder("postgresql://h/db", tmp_path) == tmp_path
    with pytest.raises(ConfigError, match="audit_journal_dir"):
        journal_folder("postgresql://h/db", None)


def test_a_default_gateway_answers_from_the_journal(tmp_path: Path, model_file: Path) -> None:
    """audit_ack defaults to journal: the answer does not wait for the database, whose
    write lock is held by someone else meanwhile; the record joins the chain after."""
    import httpx
    from tests.gateway.conftest import PEPPER

    from bastion.gateway.app import create_app
    from bastion.gateway.server import load_slot, running
    from bastion.gateway.settings import GatewaySettings

    settings = GatewaySettings(model=str(model_file), database_url=f"sqlite:///{tmp_path}/g.db")
    app = create_app(settings, models=load_slot(settings), pepper=PEPPER)
    token = str(app.state.tokens.create(name="t", role="client")[0])
    blocker = sqlite3.connect(tmp_path / "g.db", timeout=5)
    with running(app) as url:
        blocker.execute("BEGIN IMMEDIATE")  # nobody commits to the database now
        r = httpx.post(f"{url}/v1/predict", json={"inputs": [[0.0] * 64]}, timeout=10,
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert list((tmp_path / "g.db.audit-journal").glob("*.journal"))
        blocker.rollback()
        wait_until(lambda: r.json()["request_id"] in _logged(app.state.db),
                   "the journaled record was never committed")
    assert verify_chain(app.state.db).ok


def test_without_a_journal_folder_the_error_says_what_to_set(tmp_path: Path) -> None:
    from bastion.errors import ConfigError

    with pytest.raises(ConfigError, match=r"audit_journal_dir.*audit_ack = 'commit'"):
        journal_folder("postgresql+psycopg://h/db", None)
