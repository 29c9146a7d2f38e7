"""The audit committer: it reads the journal back in order across segments, commits it
from a process of its own, stops clean, is taken over in a thread when it dies, and
does not outlive a server killed with ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.gateway.conftest import wait_until

from bastion.gateway import audit
from bastion.gateway.audit import AuditEntry, AuditLog, verify_chain
from bastion.gateway.audit_chain import ChainWriter
from bastion.gateway.db import Database, audit_records, open_database
from bastion.gateway.journal import Journal, Tail


def _entry(i: int) -> AuditEntry:
    return AuditEntry(request_id=f"req{i:05d}", time=1_700_000_000.5 + i, token_id="t1",
                      role="client", client="127.0.0.1", input_sha256="cd" * 32,
                      prediction=f"[{i % 10}]", latency_ms=2.25, decision="allow")


def _n_logged(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_records)).scalar_one())


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited: only its parent has not reaped it yet


def test_a_tail_reads_the_records_in_order_across_segments(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=300)
    tail = Tail(tmp_path, journal.name)
    for i in range(3):
        journal.append(_entry(i).values())
    assert [r[0] for r in tail.read()] == ["req00000", "req00001", "req00002"]
    assert tail.read() == []
    for i in range(3, 11):
        journal.append(_entry(i).values())
    assert len(list(tmp_path.glob("*.journal"))) > 2  # it rotated meanwhile
    assert [r[0] for r in tail.read()] == [f"req{i:05d}" for i in range(3, 11)]
    assert tail.position == journal.appended == 11

    journal.committed(6)  # segments with records 0..5 are dropped
    segment, position = journal.kept()
    assert 0 < position <= 6
    again = Tail(tmp_path, journal.name, segment=segment, position=position)
    assert [r[0] for r in again.read()] == [f"req{i:05d}" for i in range(position, 11)]
    for t in (tail, again):
        t.close()
    journal.close(11)


def test_a_record_being_written_is_read_once_it_is_whole(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    tail = Tail(tmp_path, journal.name)
    line = b'["req1",1.0,null,null,"c","ab","[1]",1.0,"allow"]\n'
    with open(next(tmp_path.glob("*.journal")), "ab") as f:
        f.write(line[:20])
        f.flush()
        assert tail.read() == []
        f.write(line[20:])
    assert [r[0] for r in tail.read()] == ["req1"]
    tail.close()
    journal.close(1)


def test_the_committer_process_commits_the_journal_and_stops_clean(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/a.db")
    folder = tmp_path / "journal"
    log = AuditLog(db, journal=Journal(folder), committer_process=True)
    assert log.committer is not None
    pid = log.committer.pid
    assert pid is not None and pid != os.getpid() and _running(pid)
    for i in range(300):
        log.write(_entry(i))
    wait_until(lambda: _n_logged(db) == 300, "the committer process did not commit")
    log.close()
    assert not _running(pid)
    assert list(folder.iterdir()) == []  # committed and durable: nothing to replay
    result = verify_chain(db)
    assert result.ok and result.n_records == 300, result.problems


def test_a_killed_committer_is_taken_over_in_a_thread(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "_CHECK_EVERY", 8)
    db = open_database(f"sqlite:///{tmp_path}/a.db")
    log = AuditLog(db, journal=Journal(tmp_path / "journal"), committer_process=True)
    assert log.committer is not None and log.committer.pid is not None
    for i in range(20):
        log.write(_entry(i))
    wait_until(lambda: log.progress.committed == 20, "the committer process did not commit")
    asked: list[str] = []
    known = ChainWriter.known

    def spy(self: ChainWriter, request_ids: list[str]) -> set[str]:
        asked.extend(request_ids)
        return known(self, request_ids)

    monkeypatch.setattr(ChainWriter, "known", spy)
    os.kill(log.committer.pid, signal.SIGKILL)
    wait_until(lambda: not log.committer or not log.committer.alive(), "it did not die")
    for i in range(20, 60):
        log.write(_entry(i))
    assert log.committer.pid is None  # a thread now
    wait_until(lambda: _n_logged(db) == 60, "the thread did not take over")
    # what the dead committer reported committed is not read again; the next batch is
    # checked against the log (the dead one may have committed it unreported)
    assert asked and not set(asked) & {f"req{i:05d}" for i in range(20)}
    log.close()
    result = verify_chain(db)
    assert result.ok and result.n_records == 60, result.problems


_SERVER = """
import os, signal, sys
from pathlib import Path
from bastion.gateway.audit import AuditEntry, AuditLog
from bastion.gateway.db import open_database
from bastion.gateway.journal import Journal

log = AuditLog(open_database(sys.argv[1]), journal=Journal(Path(sys.argv[2])),
               committer_process=True)
for i in range(int(sys.argv[3])):
    log.write(AuditEntry(f"req{i:04d}", 1.7e9 + i, "t1", "client", "127.0.0.1", "ab" * 32,
                         "[1]", 1.5, "allow"))
print(log.committer.pid, flush=True)
if sys.argv[4] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
# else: exit without closing the log
"""


def _serve(tmp_path: Path, n_records: int, end: str) -> tuple[str, Path, int, int]:
    """Run a program that writes ``n_records`` through a committer process and then
    kills itself (``kill``) or just exits; its database URL, journal folder, exit
    status and committer's pid."""
    url, folder = f"sqlite:///{tmp_path}/a.db", tmp_path / "journal"
    run = subprocess.run([sys.executable, "-c", _SERVER, url, str(folder), str(n_records), end],
                         capture_output=True, text=True, timeout=120)
    assert run.stdout, run.stderr
    return url, folder, run.returncode, int(run.stdout.split()[0])


def test_the_committer_does_not_outlive_a_killed_server(tmp_path: Path) -> None:
    url, folder, status, pid = _serve(tmp_path, 50, "kill")
    assert status == -9
    wait_until(lambda: not _running(pid), "the committer outlived its server")
    db = open_database(url)
    AuditLog(db, journal=Journal(folder)).close()  # the next start replays what is left
    result = verify_chain(db)
    assert result.ok and result.n_records == 50, result.problems


def test_a_program_that_never_closes_its_log_still_exits(tmp_path: Path) -> None:
    """The committer ignores SIGTERM (a process group's stop signal), which is also how
    multiprocessing ends its children at exit: an exit hook stops it first."""
    url, _, status, pid = _serve(tmp_path, 30, "exit")
    assert status == 0
    assert not _running(pid)
    assert _n_logged(open_database(url)) == 30  # committed on the way out
