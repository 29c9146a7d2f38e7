"""The audit log's records and the hash chain they form, and :class:`ChainWriter`, which
appends batches of them to the database.

Each record carries the hash of the one before it; its own hash covers every field, so
changing a record breaks its hash and deleting one breaks the chain (or, for the last
records, no longer matches the head row). The head row holds the last record's number
and hash; a writer locks it (SQLite: ``BEGIN IMMEDIATE``; others: ``FOR UPDATE``), so
several processes append to one chain in turn.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from bastion.gateway.db import Database, audit_head, audit_records

__all__ = ["GENESIS", "MAX_BATCH", "AuditEntry", "AuditUnavailableError", "ChainWriter",
           "record_hash"]

GENESIS = "0" * 64
MAX_BATCH = 512  # records per statement: at most that many insert strings are cached


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


def record_hash(seq: int, entry: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 over the canonical JSON of the record's fields and the previous hash."""
    fields = {k: entry[k] for k in AuditEntry.__dataclass_fields__}
    payload = json.dumps([seq, fields, prev_hash], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


_FIELDS = tuple(AuditEntry.__dataclass_fields__)
_COLUMNS = ("seq", *_FIELDS, "prev_hash", "hash")


class ChainWriter:
    """Appends batches to the chain on one driver connection of its own.

    ``quick``: commit without waiting for the disk where the database allows it (SQLite's
    ``synchronous = NORMAL``; see :meth:`_Statements.commit_quickly`), for a writer whose
    records a journal already keeps safe; :meth:`make_durable` then makes every commit
    so far durable at the configured level. The writer runs fixed parameterised SQL on
    the driver connection: SQLAlchemy's per-statement machinery would cost more than
    the commit itself.
    """

    def __init__(self, db: Database, *, quick: bool = False) -> None:
        self._db = db
        self._quick = quick
        self._writer: tuple[PoolProxiedConnection, _Statements] | None = None
        # the driver's own error base class (sqlite3.Error, psycopg.Error)
        self.errors = (SQLAlchemyError, db.engine.dialect.loaded_dbapi.Error, OSError,
                       AuditUnavailableError)

    def connection(self) -> tuple[PoolProxiedConnection, _Statements]:
        if self._writer is None:
            raw = self._db.engine.raw_connection()
            sql = _Statements(self._db.engine.dialect)
            if self._quick:
                sql.commit_quickly(raw)
            self._writer = raw, sql
        return self._writer

    def append(self, entries: list[AuditEntry], *, durable: bool = False) -> None:
        """Commit ``entries`` (at most :data:`MAX_BATCH`) to the chain; ``durable``: at
        the configured durability even where this writer's commits are quick."""
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

    def known(self, request_ids: list[str]) -> set[str]:
        """Which of ``request_ids`` the log already holds."""
        raw, sql = self.connection()
        cur = raw.cursor()
        known: set[str] = set()
        try:
            for start in range(0, len(request_ids), 500):
                chunk = request_ids[start:start + 500]
                cur.execute(sql.known(len(chunk)), chunk)
                known.update(str(row[0]) for row in cur.fetchall())
            raw.commit()
        finally:
            cur.close()
        return known

    def make_durable(self) -> None:
        """Make every commit so far durable: where commits are quick, a commit at the
        configured durability that rewrites the head row as it is covers all before it
        (elsewhere they already are)."""
        if self.connection()[1].durable_before:
            with self._transaction(durable=True) as (cur, sql):
                cur.execute(sql.touch_head)

    def drop_connection(self) -> None:
        """Forget a connection the database may have dropped; a new one is made next time."""
        if self._writer is not None:
            raw, self._writer = self._writer[0], None
            with contextlib.suppress(*self.errors):
                raw.invalidate()
            # the pool's other idle connections died with the database too: without this
            # each retry may draw another dead one, and recovery waits out the backoff
            # once per pooled connection
            self._db.engine.dispose(close=False)

    def close(self) -> None:
        if self._writer is not None:
            raw, sql = self._writer
            if sql.durable_before:  # made quick: not for the pool's other users
                raw.invalidate()
            else:
                raw.close()  # back to the pool
            self._writer = None

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = False) -> Iterator[tuple[Any, _Statements]]:
        raw, sql = self.connection()
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
        crash of the process, which is all the journal guards against, but waits for no
        fsync). Set once for the connection: a statement per commit would be one more
        round trip in each batch. Other databases keep every commit durable: a database
        server can crash while the gateway lives on, and the journal is replayed only
        when the gateway restarts."""
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
        """Insert ``n`` records (at most ``MAX_BATCH``, so at most that many strings)."""
        sql = self._inserts.get(n)
        if sql is None:
            sql = self._inserts[n] = self._insert + ", ".join([self._row] * n)
        return sql

    def known(self, n: int) -> str:
        """Which of ``n`` request ids are already logged."""
        return (f"SELECT request_id FROM {audit_records.name} "
                f"WHERE request_id IN ({', '.join([self._mark] * n)})")
