"""The gateway's database: one SQLAlchemy engine shared by tokens, the audit log and
anything plugged in (incidents keep their own tables in the same database).

SQLite (the default) runs in WAL mode with ``synchronous=FULL`` so that a committed
transaction survives ``kill -9`` and power loss, and a write transaction can start with
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing on a lock
upgrade (use :meth:`Database.writing`; plain reads stay deferred so that, in WAL mode,
they never wait for a writer). PostgreSQL works through psycopg 3 (``postgresql+psycopg://...``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bastion.errors import ConfigError, InputNotFoundError

__all__ = ["Database", "audit_head", "audit_records", "metadata", "open_database", "tokens"]

metadata = MetaData()

tokens = Table(
    "gateway_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(64), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("digest", String(64), nullable=False),  # HMAC-SHA256(pepper, token), hex
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
)

audit_records = Table(
    "gateway_audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("request_id", String(32), nullable=False, unique=True),
    Column("time", Float, nullable=False),
    Column("token_id", String(200), nullable=True),
    Column("role", String(64), nullable=True),
    Column("client", String(200), nullable=False),
    Column("input_sha256", String(64), nullable=False),
    Column("prediction", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("decision", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row (id=1): the last sequence number and hash. Writers lock it, so records from
# several workers still form one chain; a deleted tail no longer matches it.
audit_head = Table(
    "gateway_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)


@dataclass(frozen=True)
class Database:
    """An engine plus its session factory; ``app.state.db`` in a running gateway."""

    engine: Engine
    sessions: sessionmaker[Session]
    sqlite_synchronous: str = "FULL"  # as opened: a process of its own opens it alike

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed on success, rolled back on error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(bastion_write=True)
            with conn.begin():
                yield conn

    def ping(self) -> bool:
        """Whether the database answers right now (``/readyz``)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True


def open_database(url: str, *, create: bool = True, sqlite_synchronous: str = "FULL") -> Database:
    """Connect to ``url`` and (by default) create the gateway's tables if missing.

    ``sqlite_synchronous``: ``FULL`` (default) makes each commit durable against power
    loss (one fsync per commit); ``NORMAL`` keeps commits safe against a crash or
    ``kill -9`` of the process but a power cut may lose the last ones.
    """
    if sqlite_synchronous.upper() not in ("FULL", "NORMAL"):
        raise ConfigError("sqlite synchronous must be FULL or NORMAL")
    if not create and url.startswith("sqlite") and ":memory:" not in url:
        path = Path(url.split("///", 1)[-1])
        if not path.is_file():
            raise InputNotFoundError(f"database {path} does not exist; check database_url")
    try:
        engine = _engine(url, sqlite_synchronous.upper())
    except (ArgumentError, ImportError) as err:
        raise ConfigError(f"database_url is not usable: {type(err).__name__}: {err}") from None
    if create:
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as err:
            raise ConfigError(
                f"could not open the database ({type(err).__name__}); check database_url"
            ) from None
    return Database(engine, sessionmaker(engine, expire_on_commit=False),
                    sqlite_synchronous.upper())


def _engine(url: str, synchronous: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", functools.partial(_sqlite_pragmas, synchronous))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(synchronous: str, dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, issue BEGIN (so BEGIN IMMEDIATE below is used).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")  # one of two literals, checked
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("bastion_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
