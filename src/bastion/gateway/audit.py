"""The tamper-evident audit log: one hash-chained record per request, committed before
the request is answered.

Each record carries the hash of the one before it; its own hash covers every field, so
changing a record breaks its hash and deleting one breaks the chain (or, for the last
records, no longer matches the head row). The chain makes tampering *evident*, not
impossible: someone who can write the database can rebuild it, which is why
``bastion audit verify`` prints the head hash for you to keep elsewhere.

Writes go through one writer thread that commits whatever requests are waiting in one
transaction (group commit): durability costs one fsync per batch rather than per
request, and a request's future resolves only after its batch is committed.

With a :class:`~.journal.Journal` (``audit_ack = "journal"``) a record is acknowledged
once it is appended to the local journal, which survives ``kill -9``; the writer commits
it moments later in a larger batch, and records a dead process left in its journal are
replayed into the database at start-up. In SQLite, which lives and dies with the
gateway's process, those commits do not wait for the disk (the journal already covers a
crash of the gateway): about once a second, and when the log closes, a small commit at
the configured ``synchronous`` level makes every commit before it durable too, and only
then does the journal drop the records they hold. An fsync per commit, fifty a second,
cost the machine more than the audit writer itself. While the database refuses a batch,
the writer retries it and new records are refused (the gateway answers 503) until it
succeeds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from bastion.gateway.db import Database, audit_head, audit_records
from bastion.gateway.journal import Journal, orphans

__all__ = ["GENESIS", "AuditEntry", "AuditLog", "AuditUnavailableError", "Verification",
           "request_ids", "verify_chain"]

log = logging.getLogger("bastion.gateway")

GENESIS = "0" * 64
_MAX_BATCH = 512
# With a journal, records are safe before they are committed: the writer commits what
# gathered every this often, rather than being woken for each record.
_LINGER_S = 0.02
# ... and makes what it committed durable (against power loss) at least this often.
_DURABLE_EVERY_S = 1.0


class AuditUnavailableError(RuntimeError):
    """The audit record could not be committed; the request must fail closed (503)."""


@dataclass(frozen=True)
class AuditEntry:
    """What is recorded about one request (the input only as its SHA-256)."""

    request_id: str
    time: float
    token_id: str | None
    role: str | None
    client: str
    input_sha256: str
    prediction: str
    latency_ms: float
    decision: str

    def values(self) -> tuple[object, ...]:
        """The fields in declaration order (cheaper than ``dataclasses.astuple``)."""
        return (self.request_id, self.time, self.token_id, self.role, self.client,
                self.input_sha256, self.prediction, self.latency_ms, self.decision)


def request_ids() -> Iterator[str]:
    """Unique request ids (32 hex digits) that sort by time: milliseconds, 48 random bits
    drawn once per process, then a counter. In time order they land at the end of the
    audit log's unique index, so a batch insert touches a page or two of it rather than
    one random page per record (random ids made the inserts cost more than the request)."""
    node = os.urandom(6).hex()
    for n in itertools.count():
        yield f"{time.time_ns() // 1_000_000:012x}{node}{n & 0xFFFFFFFF:08x}"


def record_hash(seq: int, entry: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 over the canonical JSON of the record's fields and the previous hash."""
    fields = {k: entry[k] for k in AuditEntry.__dataclass_fields__}
    payload = json.dumps([seq, fields, prev_hash], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class _Pending:
    """A queued record and whoever waits for it: a thread (``done``) or a coroutine
    (``waiter`` on ``loop``)."""

    entry: AuditEntry
    done: Future[None] | None = None
    waiter: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None


class AuditLog:
    """Appends records to the chain from one writer thread, in group commits."""

    def __init__(self, db: Database, *, journal: Journal | None = None,
                 timeout_s: float = 10.0, max_backlog: int = 10_000) -> None:
        self._db = db
        self._journal = journal
        self._timeout_s = timeout_s
        self._max_backlog = max_backlog
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._journaled_entries: collections.deque[AuditEntry] = collections.deque()
        self._writer: tuple[PoolProxiedConnection, _Statements] | None = None
        # the driver's own error base class (sqlite3.Error, psycopg.Error)
        self._db_errors = (SQLAlchemyError, db.engine.dialect.loaded_dbapi.Error, OSError,
                           AuditUnavailableError)
        self._order = threading.Lock()  # journal order = commit order
        self._failing = False  # the writer is retrying a batch the database refused
        self._stop = threading.Event()
        self._n_committed = 0  # journaled records committed so far
        self._n_durable = 0  # ... of which durable (the journal may drop them)
        self._durable_at = time.monotonic()
        if journal is not None:
            for records in orphans(journal.folder):
                self._replay(records)
        run: Callable[[], None] = (self._run if journal is None
                                   else functools.partial(self._run_journaled, journal))
        self._thread = threading.Thread(target=run, name="bastion-audit", daemon=True)
        self._thread.start()

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
        """Commit what is queued, then stop the writer and release its connection."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=self._timeout_s)
        if self._journal is not None and not self._thread.is_alive():
            self._journal.close(self._n_durable)
        if self._writer is not None:
            raw, sql = self._writer
            if sql.durable_before:  # made quick: not for the pool's other users
                raw.invalidate()
            else:
                raw.close()  # back to the pool
            self._writer = None

    def _journaled(self, journal: Journal, entry: AuditEntry) -> None:
        if self._failing or self._stop.is_set():
            raise AuditUnavailableError("audit log unavailable (database)")
        if len(self._journaled_entries) > self._max_backlog:
            raise AuditUnavailableError("audit log unavailable (database behind)")
        with self._order:
            try:
                journal.append(entry.values())
            except OSError as err:
                raise AuditUnavailableError(
                    f"audit journal unavailable ({type(err).__name__})") from None
            self._journaled_entries.append(entry)  # no wake-up: the writer comes by

    def _run_journaled(self, journal: Journal) -> None:
        pending = self._journaled_entries
        while True:
            stopping = self._stop.wait(_LINGER_S)
            while pending:
                batch = [pending.popleft() for _ in range(min(len(pending), _MAX_BATCH))]
                if not self._commit_journaled(journal, batch):
                    return
            if self._n_durable < self._n_committed and (
                    stopping or time.monotonic() - self._durable_at >= _DURABLE_EVERY_S):
                self._make_durable(journal)
            if stopping:
                return

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < _MAX_BATCH:
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
            self._append([p.entry for p in batch])
        except self._db_errors as err:
            self._drop_connection()
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

    def _commit_journaled(self, journal: Journal, entries: list[AuditEntry]) -> bool:
        """Commit journaled (already acknowledged) records without waiting for the disk,
        retrying until the database takes them; False if the log closes first (the
        journal keeps them for replay)."""
        n_entries, delay_s, retry = len(entries), 0.05, False
        while True:
            try:
                if retry:  # a commit can land although its answer was lost with the link
                    known = self._known([e.request_id for e in entries])
                    entries = [e for e in entries if e.request_id not in known]
                if entries:
                    self._append(entries)
                break
            except self._db_errors as err:
                self._drop_connection()
                if not self._failing:
                    log.error("audit log: the database refused a batch (%s); refusing "
                              "requests until it takes it", type(err).__name__)
                self._failing, retry = True, True
                if self._stop.wait(delay_s):
                    return False
                delay_s = min(2 * delay_s, 2.0)
        self._failing = False
        self._n_committed += n_entries
        return True

    def _make_durable(self, journal: Journal) -> None:
        """Let the journal drop what is committed, once it is durable: where the writer's
        commits are quick, a commit at the configured durability that rewrites the head
        row as it is makes every one before it durable (elsewhere they already are). If
        the database refuses, the journal keeps them and the next batch finds out."""
        n_committed = self._n_committed
        try:
            if self._connection()[1].durable_before:
                with self._transaction(durable=True) as (cur, sql):
                    cur.execute(sql.touch_head)
        except self._db_errors:
            self._drop_connection()
            return
        self._n_durable, self._durable_at = n_committed, time.monotonic()
        journal.committed(n_committed)

    def _replay(self, records: list[tuple[object, ...]]) -> None:
        """Commit the records of a dead process's journal that the database lacks."""
        entries = []
        for values in records:
            try:
                entries.append(AuditEntry(*values))  # type: ignore[arg-type]
            except TypeError:
                log.error("audit journal: a record with the wrong fields was skipped")
        known = self._known([e.request_id for e in entries])
        missing = [e for e in entries if e.request_id not in known]
        for start in range(0, len(missing), _MAX_BATCH):  # durable: the segment goes next
            self._append(missing[start:start + _MAX_BATCH], durable=True)
        if missing:
            log.warning("audit log: %d records replayed from the journal of a stopped "
                        "process", len(missing))

    def _known(self, request_ids: list[str]) -> set[str]:
        raw, sql = self._connection()
        known: set[str] = set()
        cur = raw.cursor()
        try:
            for start in range(0, len(request_ids), 500):
                chunk = request_ids[start:start + 500]
                cur.execute(sql.known(len(chunk)), chunk)
                known.update(str(row[0]) for row in cur.fetchall())
            raw.commit()
        finally:
            cur.close()
        return known

    def _connection(self) -> tuple[PoolProxiedConnection, _Statements]:
        # The writer holds one driver connection and runs fixed parameterised SQL on it:
        # SQLAlchemy's per-statement machinery would cost more than the commit itself.
        if self._writer is None:
            raw = self._db.engine.raw_connection()
            sql = _Statements(self._db.engine.dialect)
            if self._journal is not None:
                sql.commit_quickly(raw)
            self._writer = raw, sql
        return self._writer

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = False) -> Iterator[tuple[Any, _Statements]]:
        """A write transaction on the writer's connection, committed when the block ends;
        ``durable``: at the configured durability even where the writer's commits are
        quick (with a journal)."""
        raw, sql = self._connection()
        cur = raw.cursor()
        try:
            for statement in sql.durable_before if durable else ():
                cur.execute(statement)
            if sql.begin:
                cur.execute(sql.begin)
            yield cur, sql
            raw.commit()
            for statement in sql.durable_after if durable else ():
                cur.execute(statement)
        except BaseException:
            raw.rollback()
            raise
        finally:
            cur.close()

    def _append(self, entries: list[AuditEntry], *, durable: bool = False) -> None:
        """Commit ``entries`` to the chain."""
        with self._transaction(durable=durable) as (cur, sql):
            cur.execute(sql.head)
            head = cur.fetchone()
            if head is None:  # first record ever; another worker may be racing us to it
                cur.execute(sql.init_head, (GENESIS,))
                cur.execute(sql.head)
                head = cur.fetchone()
            if head is None:
                raise AuditUnavailableError("the audit log's head row could not be created")
            seq, prev = int(head[0]), str(head[1])
            params: list[object] = []
            for entry in entries:
                seq += 1
                values = entry.values()
                digest = record_hash(seq, dict(zip(_FIELDS, values, strict=True)), prev)
                params.extend((seq, *values, prev, digest))
                prev = digest
            # One statement for the batch: the driver lets go of the GIL once, not once per
            # row (executemany), each time waiting for the event loop to hand it back.
            cur.execute(sql.insert(len(entries)), params)
            cur.execute(sql.move_head, (seq, prev))

    def _drop_connection(self) -> None:
        if self._writer is not None:
            raw, self._writer = self._writer[0], None
            # the connection may already be gone; a new one is made next time
            with contextlib.suppress(*self._db_errors):
                raw.invalidate()
            # the pool's other idle connections died with the database too: without this
            # each retry may draw another dead one, and recovery waits out the backoff
            # once per pooled connection
            self._db.engine.dispose(close=False)


def _settle(waiters: list[asyncio.Future[None]], failure: Exception | None) -> None:
    for waiter in waiters:
        if waiter.done():  # timed out and cancelled meanwhile
            continue
        if failure is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(failure)


_FIELDS = tuple(AuditEntry.__dataclass_fields__)
_COLUMNS = ("seq", *_FIELDS, "prev_hash", "hash")


class _Statements:
    """The writer's SQL for one dialect's parameter style; values are always bound."""

    def __init__(self, dialect: Dialect) -> None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # SQLite connections run in autocommit mode here (see db.py), so the write lock
        # is taken explicitly; psycopg opens a transaction by itself.
        self.begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else ""
        # SQLite's BEGIN IMMEDIATE already locks the database; others lock the head row.
        lock = "" if dialect.name == "sqlite" else " FOR UPDATE"
        self.head = f"SELECT seq, hash FROM {audit_head.name} WHERE id = 1{lock}"
        self.init_head = (f"INSERT INTO {audit_head.name} (id, seq, hash) VALUES (1, 0, {mark}) "
                          "ON CONFLICT (id) DO NOTHING")
        self._insert = f"INSERT INTO {audit_records.name} ({', '.join(_COLUMNS)}) VALUES "
        self._row = f"({', '.join([mark] * len(_COLUMNS))})"
        self._inserts: dict[int, str] = {}
        self.move_head = f"UPDATE {audit_head.name} SET seq = {mark}, hash = {mark} WHERE id = 1"
        self.touch_head = f"UPDATE {audit_head.name} SET seq = seq WHERE id = 1"
        self._mark = mark
        self._dialect = dialect.name
        # around a commit that must be durable on a connection whose commits are quick
        # (see commit_quickly); outside the transaction, where SQLite takes the pragma
        self.durable_before: list[str] = []
        self.durable_after: list[str] = []

    def commit_quickly(self, raw: PoolProxiedConnection) -> None:
        """Make the connection's commits quick, and learn how to make one durable: in
        SQLite ``synchronous`` drops to NORMAL (in WAL mode a commit then survives a
        crash of the process, the only crash the database shares with the journal, but
        waits for no fsync). Set once for the connection: a statement per commit would
        be one more hand-over of the GIL in each batch. Other databases keep every
        commit durable: a database server can crash while the gateway lives on, and the
        journal is replayed only when the gateway restarts."""
        cur = raw.cursor()
        try:
            if self._dialect == "sqlite":
                cur.execute("PRAGMA synchronous")
                row = cur.fetchone()
                level = int(row[0]) if row else 2  # 0-3: an int, safe in the pragma
                if level > 1:
                    cur.execute("PRAGMA synchronous=1")
                    self.durable_before = [f"PRAGMA synchronous={level}"]
                    self.durable_after = ["PRAGMA synchronous=1"]
        finally:
            cur.close()

    def insert(self, n: int) -> str:
        """Insert ``n`` records (at most ``_MAX_BATCH``, so at most that many strings)."""
        sql = self._inserts.get(n)
        if sql is None:
            sql = self._inserts[n] = self._insert + ", ".join([self._row] * n)
        return sql

    def known(self, n: int) -> str:
        """Which of ``n`` request ids are already logged."""
        return (f"SELECT request_id FROM {audit_records.name} "
                f"WHERE request_id IN ({', '.join([self._mark] * n)})")


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
