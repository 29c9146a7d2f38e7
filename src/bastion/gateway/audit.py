"""The tamper-evident audit log: one hash-chained record per request, committed before
the request is answered (records and chain: :mod:`~.audit_chain`).

The chain makes tampering *evident*, not impossible: someone who can write the database
can rebuild it, which is why ``bastion audit verify`` prints the head hash for you to
keep elsewhere.

Without a journal (``audit_ack = "commit"``), writes go through one writer thread that
commits whatever requests are waiting in one transaction (group commit): durability
costs one fsync per batch rather than per request, and a request's future resolves only
after its batch is committed.

With a :class:`~.journal.Journal` (``audit_ack = "journal"``) a record is acknowledged
once it is appended to the local journal, which survives ``kill -9``; the committer
(:mod:`~.audit_committer`, a process of its own by default) reads it back and commits
it moments later in a larger batch, and records a dead process left in its journal are
replayed into the database at start-up. In SQLite, which lives and dies with the
gateway's processes, those commits do not wait for the disk (the journal already covers
a crash of the gateway): about once a second, and when the log closes, a small commit at
the configured ``synchronous`` level makes every commit before it durable too, and only
then does the journal drop the records they hold. While the database refuses a batch,
or the committer falls too far behind, new records are refused (the gateway answers
503) until it catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bastion.gateway.audit_chain import (
    GENESIS,
    MAX_BATCH,
    AuditEntry,
    AuditUnavailableError,
    ChainWriter,
    record_hash,
)
from bastion.gateway.audit_committer import Committer, Progress, start_committer
from bastion.gateway.db import Database, audit_head, audit_records
from bastion.gateway.journal import Journal, orphans

__all__ = ["GENESIS", "AuditEntry", "AuditLog", "AuditUnavailableError", "Verification",
           "record_hash", "request_ids", "verify_chain"]

log = logging.getLogger("bastion.gateway")

# appended records between two checks that the committer is alive (a waitpid each)
_CHECK_EVERY = 1024
_REPLAY_TRIES = 3


def request_ids() -> Iterator[str]:
    """Unique request ids (32 hex digits) that sort by time: milliseconds, 48 random bits
    drawn once per process, then a counter. In time order they land at the end of the
    audit log's unique index, so a batch insert touches a page or two of it rather than
    one random page per record (random ids made the inserts cost more than the request)."""
    node = os.urandom(6).hex()
    for n in itertools.count():
        yield f"{time.time_ns() // 1_000_000:012x}{node}{n & 0xFFFFFFFF:08x}"


@dataclass
class _Pending:
    """A queued record and whoever waits for it: a thread (``done``) or a coroutine
    (``waiter`` on ``loop``)."""

    entry: AuditEntry
    done: Future[None] | None = None
    waiter: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None


class AuditLog:
    """Appends records to the chain: from a writer thread in group commits, or with a
    journal, through the journal and its committer (``committer_process``: in a child
    process rather than a thread)."""

    def __init__(self, db: Database, *, journal: Journal | None = None,
                 timeout_s: float = 10.0, max_backlog: int = 10_000,
                 committer_process: bool = False) -> None:
        self._db = db
        self._journal = journal
        self._timeout_s = timeout_s
        self._max_backlog = max_backlog
        self._chain = ChainWriter(db)
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._committer: Committer | None = None
        self._progress = Progress.local()  # the committer's, with a journal
        self._durable_seen = 0
        self._takeover = threading.Lock()
        if journal is None:
            self._thread = threading.Thread(target=self._run, name="bastion-audit",
                                            daemon=True)
            self._thread.start()
            return
        for records in orphans(journal.folder):
            self._replay(records)
        self._chain.close()
        self._committer, self._progress = start_committer(db, journal,
                                                          process=committer_process)

    @property
    def committer(self) -> Committer | None:
        """The journal's committer (None without a journal)."""
        return self._committer

    @property
    def progress(self) -> Progress:
        """How far the journal's committer got (all zero without a journal)."""
        return self._progress

    def healthy(self) -> bool:
        """Whether records are taken now (``/readyz``): not while the database refuses
        the journal's batches or the committer is too far behind, when requests get 503."""
        if self._journal is None:
            return (not self._stop.is_set() and self._thread is not None
                    and self._thread.is_alive())
        return self._refusal(self._journal) is None

    def submit(self, entry: AuditEntry) -> Future[None]:
        """Queue a record; the future resolves once it is durable (committed, or with a
        journal, journaled) or fails."""
        done: Future[None] = Future()
        if self._journal is None:
            self._queue.put(_Pending(entry, done=done))
            return done
        try:
            self._journaled(self._journal, entry)
        except AuditUnavailableError as err:
            done.set_exception(err)
        else:
            done.set_result(None)
        return done

    def write(self, entry: AuditEntry) -> None:
        """Record ``entry`` and wait until it is durable; raises AuditUnavailableError."""
        try:
            self.submit(entry).result(timeout=self._timeout_s)
        except TimeoutError:
            raise AuditUnavailableError("audit log did not commit in time") from None

    async def awrite(self, entry: AuditEntry) -> None:
        """:meth:`write` for async code: the event loop keeps serving while we wait."""
        if self._journal is not None:
            self._journaled(self._journal, entry)  # one write(2), no waiting
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(entry, waiter=waiter, loop=loop))
        try:
            async with asyncio.timeout(self._timeout_s):  # no extra task, unlike wait_for
                await waiter
        except TimeoutError:
            raise AuditUnavailableError("audit log did not commit in time") from None

    def close(self) -> None:
        """Commit what is queued (or journaled), then stop the writer."""
        self._stop.set()
        if self._committer is not None and self._journal is not None:
            self._committer.stop(self._timeout_s)
            self._journal.close(self._progress.durable)
        elif self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=self._timeout_s)
        self._chain.close()

    def _journaled(self, journal: Journal, entry: AuditEntry) -> None:
        refusal = self._refusal(journal)
        if refusal is not None:
            if refusal != "closing":  # a dead committer looks like this too
                self._check_committer(journal)
            raise AuditUnavailableError(f"audit log unavailable ({refusal})")
        try:
            journal.append(entry.values())
        except OSError as err:
            raise AuditUnavailableError(
                f"audit journal unavailable ({type(err).__name__})") from None
        if journal.appended % _CHECK_EVERY == 0:
            self._check_committer(journal)
        durable = self._progress.durable
        if durable != self._durable_seen:  # about once a second
            self._durable_seen = durable
            journal.committed(durable)

    def _refusal(self, journal: Journal) -> str | None:
        """Why new journaled records are refused now (503), if they are."""
        if self._stop.is_set():
            return "closing"
        if self._progress.failing:
            return "database"
        if journal.appended - self._progress.committed > self._max_backlog:
            return "database behind"
        return None

    def _check_committer(self, journal: Journal) -> None:
        """Take the committing over in a thread if the committer died."""
        with self._takeover:
            if self._committer is None or self._committer.alive() or self._stop.is_set():
                return
            log.error("audit log: the committer died; committing in a thread from now on")
            self._progress.failing = False
            self._committer = Committer(self._db, journal, self._progress, process=False)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        failure: AuditUnavailableError | None = None
        try:
            self._chain.append([p.entry for p in batch])
        except self._chain.errors as err:
            self._chain.drop_connection()
            failure = AuditUnavailableError(f"audit log unavailable ({type(err).__name__})")
        # Coroutines are woken with one call per event loop and batch, not one per record.
        waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for p in batch:
            if p.done is not None:
                if failure is None:
                    p.done.set_result(None)
                else:
                    p.done.set_exception(failure)
            elif p.waiter is not None and p.loop is not None:
                waiting.setdefault(p.loop, []).append(p.waiter)
        for loop, waiters in waiting.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, waiters, failure)

    def _replay(self, records: list[tuple[object, ...]]) -> None:
        """Commit the records of a dead process's journal that the database lacks."""
        entries = []
        for values in records:
            try:
                entries.append(AuditEntry(*values))  # type: ignore[arg-type]
            except TypeError:
                log.error("audit journal: a record with the wrong fields was skipped")
        replayed = 0
        for attempt in range(_REPLAY_TRIES):
            # The dead process's committer may still be finishing a batch (it stops at
            # its next step): what it commits meanwhile breaks the unique request ids of
            # a batch built before, so a failed batch is checked against the log again.
            try:
                known = self._chain.known([e.request_id for e in entries])
                missing = [e for e in entries if e.request_id not in known]
                for start in range(0, len(missing), MAX_BATCH):  # durable: the segment goes
                    self._chain.append(missing[start:start + MAX_BATCH], durable=True)
                    replayed += len(missing[start:start + MAX_BATCH])
                break
            except self._chain.errors:
                self._chain.drop_connection()
                if attempt == _REPLAY_TRIES - 1:
                    raise
                time.sleep(0.2)
        if replayed:
            log.warning("audit log: %d records replayed from the journal of a stopped "
                        "process", replayed)


def _settle(waiters: list[asyncio.Future[None]], failure: Exception | None) -> None:
    for waiter in waiters:
        if waiter.done():  # timed out and cancelled meanwhile
            continue
        if failure is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(failure)


@dataclass(frozen=True)
class Verification:
    """The outcome of walking the chain: ``ok`` only when ``problems`` is empty."""

    n_records: int
    head_hash: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(db: Database, *, max_problems: int = 20) -> Verification:
    """Recompute every record's hash and link; report changed, missing or extra records."""
    problems: list[str] = []
    seq, prev, n = 0, GENESIS, 0
    for r in _records(db):
        n += 1
        if r["seq"] != seq + 1:
            problems.append(f"records {seq + 1}..{r['seq'] - 1} are missing (deleted?)")
        elif r["prev_hash"] != prev:
            problems.append(f"record {r['seq']} does not link to record {seq}")
        if record_hash(r["seq"], r, r["prev_hash"]) != r["hash"]:
            problems.append(f"record {r['seq']} (request {r['request_id']}) was changed")
        seq, prev = r["seq"], r["hash"]
    with db.engine.connect() as conn:
        head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), str(head.hash))
    if (head_seq, head_hash) != (seq, prev):
        problems.append(
            f"the chain ends at record {seq} but the head says {head_seq}: "
            "the last records were deleted or the head was changed"
        )
    return Verification(n, head_hash, problems[:max_problems])


def _records(db: Database) -> Iterator[dict[str, Any]]:
    with db.engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(
            select(audit_records).order_by(audit_records.c.seq)
        )
        for row in result:
            yield dict(row._mapping)
