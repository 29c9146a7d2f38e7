"""Incident response: playbooks that act on the monitor's alarms, incidents kept in the
gateway database, alerts by webhook and e-mail.

``alarm`` (what is raised) → ``responder`` (runs ``playbooks``, writes to ``store``,
hands to ``notifiers``).
"""

from __future__ import annotations

from bastion.gateway.incidents.alarm import Alarm, AlarmSink, Kind, Level
from bastion.gateway.incidents.notifiers import (
    AlertSettings,
    Dispatcher,
    EmailNotifier,
    WebhookNotifier,
    notifiers_from,
)
from bastion.gateway.incidents.playbooks import ACTIONS, Levers, Playbooks
from bastion.gateway.incidents.responder import Responder
from bastion.gateway.incidents.store import Incident, IncidentStore

__all__ = [
    "ACTIONS",
    "Alarm",
    "AlarmSink",
    "AlertSettings",
    "Dispatcher",
    "EmailNotifier",
    "Incident",
    "IncidentStore",
    "Kind",
    "Level",
    "Levers",
    "Playbooks",
    "Responder",
    "WebhookNotifier",
    "notifiers_from",
]
