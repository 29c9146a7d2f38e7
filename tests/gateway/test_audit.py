"""The audit chain: concurrent group commits form one chain; a changed, deleted or
truncated record is detected."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from bastion.gateway.audit import AuditEntry, AuditLog, verify_chain
from bastion.gateway.db import Database, audit_records, open_database


def _entry(i: int) -> AuditEntry:
    return AuditEntry(request_id=f"req{i:04d}", time=1_700_000_000.0 + i, token_id="t1",
                      role="client", client="127.0.0.1", input_sha256="ab" * 32,
                      prediction=f"[{i % 10}]", latency_ms=1.5, decision="allow")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(f"sqlite:///{tmp_path}/audit.db")


@pytest.fixture
def filled(db: Database) -> Database:
    log = AuditLog(db)
    threads = [threading.Thread(target=lambda k=k: [log.write(_entry(k * 25 + i))
                                                    for i in range(25)]) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    return db


def test_concurrent_writers_make_one_intact_chain(filled: Database) -> None:
    result = verify_chain(filled)
    assert result.ok, result.problems
    assert result.n_records == 200
    with filled.engine.connect() as conn:
        seqs = conn.execute(select(audit_records.c.seq).order_by(audit_records.c.seq)).scalars()
        assert list(seqs) == list(range(1, 201))
        ids = conn.execute(select(func.count(func.distinct(audit_records.c.request_id))))
        assert ids.scalar() == 200


def test_changed_record_is_detected(filled: Database) -> None:
    with filled.writing() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 57)
                     .values(decision="blocked"))
    result = verify_chain(filled)
    assert not result.ok
    assert any("record 57" in p and "changed" in p for p in result.problems)


def test_deleted_record_is_detected(filled: Database) -> None:
    with filled.writing() as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 120))
    result = verify_chain(filled)
    assert any("120..120 are missing" in p for p in result.problems)


def test_rehashed_record_still_breaks_the_link(filled: Database) -> None:
    """Changing a record and recomputing its own hash breaks the next record's link."""
    from bastion.gateway.audit import record_hash

    with filled.writing() as conn:
        row = conn.execute(select(audit_records).where(audit_records.c.seq == 10)).one()
        values = {**row._mapping, "prediction": "[tampered]"}
        conn.execute(update(audit_records).where(audit_records.c.seq == 10).values(
            prediction="[tampered]", hash=record_hash(10, values, row.prev_hash)))
    result = verify_chain(filled)
    assert any("record 11 does not link" in p for p in result.problems)


def test_deleted_tail_is_detected(filled: Database) -> None:
    with filled.writing() as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq > 195))
    result = verify_chain(filled)
    assert any("head says 200" in p for p in result.problems)


def test_empty_log_verifies(db: Database) -> None:
    assert verify_chain(db).ok and verify_chain(db).n_records == 0


@pytest.mark.parametrize(("setting", "level"), [("FULL", 2), ("NORMAL", 1)])
def test_sqlite_runs_in_wal_with_the_chosen_durability(tmp_path: Path, setting: str,
                                                       level: int) -> None:
    from sqlalchemy import text

    db = open_database(f"sqlite:///{tmp_path}/d.db", sqlite_synchronous=setting)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == level


def test_request_ids_are_unique_and_sort_by_time() -> None:
    import time

    from bastion.gateway.audit import request_ids

    ids = request_ids()
    first = [next(ids) for _ in range(1000)]
    time.sleep(0.002)
    later = next(ids)
    assert len(set(first)) == 1000 and all(len(i) == 32 for i in first)
    assert first == sorted(first) and later > first[-1]
    assert next(request_ids())[12:24] != later[12:24]  # each process draws its own
