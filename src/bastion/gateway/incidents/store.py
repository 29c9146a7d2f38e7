"""Incidents in the gateway's database, in a table of their own (``gateway_incidents``).

One row per alarm the responder acted on: when, what kind, how severe, about whom (a
token id, a client address or a model version), the evidence (numbers only, never an
input), the actions taken with their outcome, and whether it is still open. Written
with SQLAlchemy Core, parameterised; ``bastion incidents list|show`` reads it.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from bastion.errors import ConfigError
from bastion.gateway.incidents.alarm import Alarm

__all__ = ["Incident", "IncidentStore", "incidents"]

_metadata = MetaData()

incidents = Table(
    "gateway_incidents",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("level", String(16), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("risk", Float, nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON object of numbers
    Column("actions", Text, nullable=False),  # JSON list of {"action", "ok", "detail"}
    Column("status", String(16), nullable=False),
)


@dataclass(frozen=True)
class Incident:
    """A stored incident, as read back."""

    id: int
    time: float
    kind: str
    level: str
    subject_kind: str
    subject: str
    risk: float
    summary: str
    evidence: dict[str, float]
    actions: list[dict[str, Any]]
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class IncidentStore:
    """Add and read incidents; creates its table in ``engine`` when missing."""

    def __init__(self, engine: Engine, *, create: bool = True) -> None:
        self._engine = engine
        if create:
            try:
                _metadata.create_all(engine)
            except SQLAlchemyError as err:
                raise ConfigError(f"could not open the incidents table ({type(err).__name__});"
                                  " check database_url") from None

    def add(self, alarm: Alarm, actions: list[dict[str, Any]]) -> Incident:
        values = {
            "time": alarm.time, "kind": alarm.kind.value, "level": alarm.level.value,
            "subject_kind": alarm.subject_kind, "subject": alarm.subject, "risk": alarm.risk,
            "summary": alarm.summary, "evidence": json.dumps(alarm.evidence, sort_keys=True),
            "actions": json.dumps(actions), "status": "open",
        }
        with self._engine.begin() as conn:
            key = conn.execute(insert(incidents).values(**values)).inserted_primary_key
        if key is None:
            raise RuntimeError("the database returned no id for the new incident")
        return _incident({"id": int(key[0]), **values})

    def list(self, *, limit: int = 50, kind: str | None = None) -> builtins.list[Incident]:
        """The newest ``limit`` incidents, newest first (optionally of one kind)."""
        query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(incidents.c.kind == kind)
        with self._engine.connect() as conn:
            return [_incident(r._mapping) for r in conn.execute(query)]

    def get(self, incident_id: int) -> Incident | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        return None if row is None else _incident(row._mapping)

    def close(self, incident_id: int) -> bool:
        """Mark an incident closed; False when there is no such incident."""
        with self._engine.begin() as conn:
            done = conn.execute(update(incidents).where(incidents.c.id == incident_id)
                                .values(status="closed"))
        return bool(done.rowcount)

    def blocks(self) -> dict[tuple[str, str], bool]:
        """Every subject a ``block`` action succeeded on, and whether one of its block
        incidents is still open (the monitor's blocked set, shared by every gateway
        process on this database)."""
        query = select(incidents.c.subject_kind, incidents.c.subject, incidents.c.status,
                       incidents.c.actions).where(incidents.c.level == "block")
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        out: dict[tuple[str, str], bool] = {}
        for r in rows:
            if any(a.get("action") == "block" and a.get("ok") for a in json.loads(r.actions)):
                key = (r.subject_kind, r.subject)
                out[key] = out.get(key, False) or r.status == "open"
        return out


def _incident(row: RowMapping | dict[str, Any]) -> Incident:
    return Incident(
        id=int(row["id"]), time=float(row["time"]), kind=str(row["kind"]),
        level=str(row["level"]), subject_kind=str(row["subject_kind"]),
        subject=str(row["subject"]), risk=float(row["risk"]), summary=str(row["summary"]),
        evidence=json.loads(row["evidence"]), actions=json.loads(row["actions"]),
        status=str(row["status"]),
    )
