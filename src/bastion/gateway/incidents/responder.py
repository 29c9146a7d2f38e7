"""The incident responder: runs the playbook for an alarm, stores the incident, alerts.

Actions run first (stopping an attack matters more than writing it down), then the
incident is stored with each action's outcome, then alerts are queued. A failing
action is recorded as failed and the others still run; a database that is down costs
the record (logged), not the response.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bastion.gateway.incidents.alarm import Alarm
from bastion.gateway.incidents.notifiers import Dispatcher
from bastion.gateway.incidents.playbooks import ACTIONS, ActionSkipped, Levers, Playbooks
from bastion.gateway.incidents.store import Incident, IncidentStore

__all__ = ["Responder"]

log = logging.getLogger("bastion.gateway.incidents")


class Responder:
    """An :class:`~bastion.gateway.incidents.alarm.AlarmSink` that acts on alarms."""

    def __init__(self, *, store: IncidentStore, levers: Levers, playbooks: Playbooks,
                 dispatcher: Dispatcher) -> None:
        self.store = store
        self._levers = levers
        self._playbooks = playbooks
        self._dispatcher = dispatcher

    def handle(self, alarm: Alarm) -> None:
        results = [self._act(name, alarm) for name in self._playbooks.actions(alarm)]
        try:
            incident = self.store.add(alarm, results)
        except SQLAlchemyError as err:
            log.error("could not store the %s incident (%s); actions taken: %s", alarm.kind,
                      type(err).__name__, ", ".join(r["action"] for r in results) or "none")
            incident = Incident(id=0, time=alarm.time, kind=alarm.kind.value,
                                level=alarm.level.value, subject_kind=alarm.subject_kind,
                                subject=alarm.subject, risk=alarm.risk, summary=alarm.summary,
                                evidence={k: v for k, v in alarm.evidence.items()
                                          if math.isfinite(v)},
                                actions=results, status="unrecorded")
        self._dispatcher.submit(incident)

    def _act(self, name: str, alarm: Alarm) -> dict[str, Any]:
        try:
            return {"action": name, "ok": True, "detail": ACTIONS[name](self._levers, alarm)}
        except ActionSkipped as skipped:
            return {"action": name, "ok": False, "detail": f"skipped: {skipped}"}
        except Exception as err:  # one failed lever must not stop the others
            log.error("incident action %s failed: %s", name, type(err).__name__)
            return {"action": name, "ok": False, "detail": f"failed: {type(err).__name__}"}
