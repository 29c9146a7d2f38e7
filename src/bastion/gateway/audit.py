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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bastion.gateway.db import Database, audit_head, audit_records

__all__ = ["GENESIS", "AuditEntry", "AuditLog", "AuditUnavailableError", "Verification",
           "verify_chain"]

GENESIS = "0" * 64
_MAX_BATCH = 512


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


def record_hash(seq: int, entry: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 over the canonical JSON of the record's fields and the previous hash."""
    fields = {k: entry[k] for k in AuditEntry.__dataclass_fields__}
    payload = json.dumps([seq, fields, prev_hash], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class _Pending:
    entry: AuditEntry
    done: Future[None] = field(default_factory=Future)


class AuditLog:
    """Appends records to the chain from one writer thread, in group commits."""

    def __init__(self, db: Database, *, timeout_s: float = 10.0) -> None:
        self._db = db
        self._timeout_s = timeout_s
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bastion-audit", daemon=True)
        self._thread.start()

    def submit(self, entry: AuditEntry) -> Future[None]:
        """Queue a record; the future resolves once it is committed (or fails)."""
        pending = _Pending(entry)
        self._queue.put(pending)
        return pending.done

    def write(self, entry: AuditEntry) -> None:
        """Record ``entry`` and wait for the commit; raises AuditUnavailableError."""
        try:
            self.submit(entry).result(timeout=self._timeout_s)
        except TimeoutError:
            raise AuditUnavailableError("audit log did not commit in time") from None

    async def awrite(self, entry: AuditEntry) -> None:
        """:meth:`write` for async code: the event loop keeps serving while we wait."""
        try:
            await asyncio.wait_for(asyncio.wrap_future(self.submit(entry)), self._timeout_s)
        except TimeoutError:
            raise AuditUnavailableError("audit log did not commit in time") from None

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=self._timeout_s)

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
        try:
            with self._db.writing() as conn:
                _append(conn, [p.entry for p in batch])
        except (SQLAlchemyError, OSError) as err:
            failure = AuditUnavailableError(f"audit log unavailable ({type(err).__name__})")
            for p in batch:
                p.done.set_exception(failure)
            return
        for p in batch:
            p.done.set_result(None)


def _append(conn: Connection, entries: list[AuditEntry]) -> None:
    head = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).first()
    if head is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
        except IntegrityError:
            pass  # another worker created it first; the lock below serialises us
        head = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            .with_for_update()
        ).one()
    seq, prev = int(head.seq), str(head.hash)
    rows = []
    for entry in entries:
        seq += 1
        values = asdict(entry)
        digest = record_hash(seq, values, prev)
        rows.append({**values, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    conn.execute(insert(audit_records), rows)
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev))


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
