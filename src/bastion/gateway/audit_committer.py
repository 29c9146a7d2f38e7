"""Commits the audit journal to the database, from a process of its own.

With ``audit_ack = "journal"`` a request is answered once its record is in the local
journal; the committer reads the journal back (:class:`~.journal.Tail`) every
``_LINGER_S``, appends what gathered to the chain in one transaction per batch, and
reports how far it got through :class:`Progress`, a few integers in shared memory that
the server reads on each request without a system call.

Why a process: a writer thread in the server process held the GIL for every record it
hashed and bound, in turns with the event loop, and each hand-over cost both threads a
wake-up. Measured at 8 connections, that thread took 8 points of throughput against a
bare server (the gateway without any audit writing was 85 % of bare, with the thread
77 %). The process reads what the server already wrote, so the server sends it
nothing per record.

The child is forked from multiprocessing's fork server (as the monitor's scoring
process) and opens the database itself. It stops when the server tells it to, after
committing everything the journal holds and making it durable (it ignores SIGINT and
SIGTERM, which a terminal or systemd sends the whole process group), or, without
committing more, when the server process dies: the next start replays the journal.
If the child dies, the server takes the committing over in a thread.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.util
import signal
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from bastion.gateway.audit_chain import MAX_BATCH, AuditEntry, ChainWriter
from bastion.gateway.db import Database, open_database
from bastion.gateway.forkserver import forkserver
from bastion.gateway.journal import Journal, Tail

__all__ = ["Committer", "Progress", "commit_journal", "start_committer"]

log = logging.getLogger("bastion.gateway")

# Records are safe in the journal before they are committed: the committer commits what
# gathered every this often, rather than being woken for each record ...
_LINGER_S = 0.02
# ... and makes what it committed durable (against power loss) at least this often.
_DURABLE_EVERY_S = 1.0
_READY_S = 60.0
_running: weakref.WeakSet[Committer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop committer processes at exit, whoever forgot to close their log: the child
    ignores the SIGTERM that multiprocessing.util's own hook (registered on import,
    above, so it runs after this one) sends its children before joining them."""
    for committer in list(_running):
        committer.stop(10.0)


class Progress(ctypes.Structure):
    """How far the committer got: records committed and made durable (counted from the
    journal's start) and whether the database refuses a batch now (0 or 1). Plain
    ctypes fields, so the request path reads them without a lock or a system call."""

    _fields_ = (("committed", ctypes.c_int64), ("durable", ctypes.c_int64),
                ("failing", ctypes.c_int64))

    @classmethod
    def shared(cls) -> Progress:
        """In memory a child process shares (a file-backed mapping)."""
        return multiprocessing.RawValue(cls)

    @classmethod
    def local(cls) -> Progress:
        """In this process's memory only, for a committer thread."""
        return cls()


def commit_journal(chain: ChainWriter, tail: Tail, progress: Progress,
                   wait: Callable[[float], bool]) -> None:
    """Commit what ``tail`` reads until ``wait`` (which sleeps up to its argument) says
    to stop; then commit the rest and make it durable. A batch the database refuses is
    retried, the gateway refusing new records meanwhile (``progress.failing``); if told
    to stop while retrying, the journal keeps what is left for the next start.

    The first batch after a start, and a retried batch, is first checked against the
    log: a dead committer may have committed it, or a commit may have landed although
    its answer was lost with the connection. The log holds a prefix of the journal."""
    check, durable_at = True, time.monotonic()
    # What the journal dropped was durable; and what a committer before this one (taken
    # over when it died) reported committed is in the log: not read again.
    skip = max(0, progress.committed - tail.position)
    progress.committed = tail.position + skip
    while True:
        stopping = wait(_LINGER_S)
        records = tail.read()
        if skip:
            records, skip = records[skip:], max(0, skip - len(records))
        for start in range(0, len(records), MAX_BATCH):
            batch = records[start:start + MAX_BATCH]
            entries = [AuditEntry(*r) for r in batch]  # type: ignore[arg-type]
            checked = _commit(chain, entries, progress, wait, check=check)
            if checked is None:
                return
            check = checked
            progress.committed += len(entries)
        progress.committed = tail.position + skip  # and the unreadable records skipped
        committed = progress.committed
        if committed > progress.durable and (
                stopping or time.monotonic() - durable_at >= _DURABLE_EVERY_S):
            try:
                chain.make_durable()
            except chain.errors:  # the journal keeps them; the next batch finds out
                chain.drop_connection()
            else:
                progress.durable, durable_at = committed, time.monotonic()
        if stopping:
            return


def _commit(chain: ChainWriter, entries: list[AuditEntry], progress: Progress,
            wait: Callable[[float], bool], *, check: bool) -> bool | None:
    """Commit one batch, retrying until the database takes it; returns whether the next
    batch must be checked against the log, or None if told to stop first."""
    delay_s = 0.05
    while True:
        try:
            if check:
                known = chain.known([e.request_id for e in entries])
                todo = [e for e in entries if e.request_id not in known]
                if todo:
                    chain.append(todo)
                check = not todo  # all there: the next batch may be partly there too
            else:
                chain.append(entries)
            progress.failing = False
            return check
        except chain.errors as err:
            chain.drop_connection()
            if not progress.failing:
                log.error("audit log: the database refused a batch (%s); refusing "
                          "requests until it takes it", type(err).__name__)
            progress.failing, check = True, True
            if wait(delay_s):
                return None
            delay_s = min(2 * delay_s, 2.0)


class Committer:
    """A running committer, in a child process or (``process=False``) a thread."""

    def __init__(self, db: Database, journal: Journal, progress: Progress, *,
                 process: bool) -> None:
        segment, position = journal.kept()
        self._thread: threading.Thread | None = None
        self._process: BaseProcess | None = None
        if process:
            ctx = forkserver()
            ours, theirs = ctx.Pipe()
            url = db.engine.url.render_as_string(hide_password=False)
            self._process = ctx.Process(
                target=_child, daemon=True, name="bastion-audit-committer",
                args=(theirs, url, db.sqlite_synchronous, journal.folder, journal.name,
                      segment, position, progress))
            self._process.start()
            theirs.close()
            self._conn: Connection | None = ours
            try:
                if not ours.poll(_READY_S):
                    raise EOFError
                ours.recv()  # "ready"
            except EOFError:
                self._process.kill()
                raise RuntimeError("the audit committer process did not start") from None
            _running.add(self)
            return
        self._conn = None
        self._stop = threading.Event()
        self.chain = ChainWriter(db, quick=True)
        tail = Tail(journal.folder, journal.name, segment=segment, position=position)

        def run() -> None:
            try:
                commit_journal(self.chain, tail, progress, self._stop.wait)
            finally:
                tail.close()
                self.chain.close()

        self._thread = threading.Thread(target=run, name="bastion-audit", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        if self._process is not None:
            return bool(self._process.is_alive())
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float) -> None:
        """Commit what the journal holds, make it durable, and stop."""
        if self._process is not None:
            if self._conn is not None:
                with contextlib.suppress(OSError):  # it died
                    self._conn.send("stop")
                self._process.join(timeout_s)
                if self._process.is_alive():
                    self._process.kill()
                    self._process.join(5)
                self._conn.close()
                self._conn = None
                _running.discard(self)
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def start_committer(db: Database, journal: Journal, *,
                    process: bool) -> tuple[Committer, Progress]:
    """A committer in a child process where asked and possible, else in a thread, and
    the progress it reports. An in-memory database cannot be shared with another
    process."""
    if process and ":memory:" not in str(db.engine.url) and str(db.engine.url) != "sqlite://":
        try:
            progress = Progress.shared()
            return Committer(db, journal, progress, process=True), progress
        except (OSError, RuntimeError) as err:
            log.error("audit committer: no process (%s); committing in a thread", err)
    progress = Progress.local()
    return Committer(db, journal, progress, process=False), progress


def _child(conn: Connection, url: str, synchronous: str, folder: Path, name: str,
           segment: int, position: int, progress: Progress) -> None:
    # A terminal's Ctrl-C or systemd's stop signals the whole process group: the server
    # then stops the committer itself, after the last requests are journaled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    db = open_database(url, create=False, sqlite_synchronous=synchronous)
    chain = ChainWriter(db, quick=True)  # connects on the first batch, retried as any
    conn.send("ready")

    def wait(timeout_s: float) -> bool:
        if not conn.poll(timeout_s):
            return False
        try:
            conn.recv()  # "stop"
        except EOFError:  # the server died: the journal is replayed when it restarts
            raise SystemExit(0) from None
        return True

    commit_journal(chain, Tail(folder, name, segment=segment, position=position),
                   progress, wait)
    chain.close()
