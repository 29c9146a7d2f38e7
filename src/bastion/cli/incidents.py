"""``bastion incidents list|show|close``: the incidents the gateway's monitor recorded.

Reads the ``gateway_incidents`` table of the gateway's database (``--database-url``, or
``database_url`` in the ``[gateway]`` table of ``--config``); nothing is created in a
database that has no incidents table. ``close`` marks an incident handled: a block it
placed is lifted within seconds (every gateway process re-reads open blocks).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

_CONFIG = typer.Option(None, "--config", "-c", help="TOML file with a \\[gateway] table.")
_DB = typer.Option(None, "--database-url", help="SQLAlchemy URL (default from settings).")
_JSON = typer.Option(False, "--json", help="JSON instead of text.")


def _store(database_url: str | None, config: Path | None) -> Any:
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from bastion.cli._settings import resolve
    from bastion.errors import ConfigError
    from bastion.gateway.db import open_database
    from bastion.gateway.incidents.store import IncidentStore, incidents
    from bastion.gateway.settings import GatewaySettings

    settings = resolve(GatewaySettings, "gateway", {"database_url": database_url}, config)
    engine = open_database(settings.database_url, create=False).engine
    try:
        present = inspect(engine).has_table(incidents.name)
    except SQLAlchemyError as err:
        raise ConfigError(f"cannot read the gateway database ({type(err).__name__}); check "
                          "--database-url") from None
    if not present:
        raise ConfigError("that database holds no incidents table; point --database-url at "
                          "the gateway's database")
    return IncidentStore(engine, create=False)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def register(app: typer.Typer) -> None:
    incidents = typer.Typer(help="Incidents raised by the gateway's runtime monitor.",
                            no_args_is_help=True)
    app.add_typer(incidents, name="incidents")

    @incidents.command("list")
    def list_(
        limit: int = typer.Option(50, min=1, help="How many, newest first."),
        kind: str | None = typer.Option(None, help="Only extraction, adversarial or drift."),
        as_json: bool = _JSON,
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """List incidents, newest first: id, time (UTC), kind, level, subject, risk."""
        rows = _store(database_url, config).list(limit=limit, kind=kind)
        if as_json:
            typer.echo(json.dumps([r.as_dict() for r in rows]))
            return
        if not rows:
            typer.echo("no incidents", err=True)
        for r in rows:
            actions = ", ".join(a["action"] for a in r.actions if a["ok"]) or "alert only"
            typer.echo(f"#{r.id:<5} {_when(r.time)}  {r.kind:<11} {r.level:<8} "
                       f"{r.subject_kind} {r.subject:<20} risk {r.risk:.2f}  {actions}")

    @incidents.command("show")
    def show(
        incident_id: int = typer.Argument(..., help="The incident's number (from list)."),
        as_json: bool = _JSON,
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """Everything recorded about one incident: evidence and each action's outcome."""
        from bastion.errors import UnknownPluginError

        incident = _store(database_url, config).get(incident_id)
        if incident is None:
            raise UnknownPluginError(f"no incident #{incident_id}; see bastion incidents list")
        if as_json:
            typer.echo(json.dumps(incident.as_dict()))
            return
        typer.echo(f"incident #{incident.id} ({incident.status})")
        typer.echo(f"time      {_when(incident.time)} UTC")
        typer.echo(f"kind      {incident.kind} ({incident.level})")
        typer.echo(f"subject   {incident.subject_kind} {incident.subject}")
        typer.echo(f"risk      {incident.risk:.2f}")
        typer.echo(f"summary   {incident.summary}")
        typer.echo("evidence")
        for key, value in sorted(incident.evidence.items()):
            typer.echo(f"  {key:<20} {value:g}")
        typer.echo("actions")
        for action in incident.actions or [{"action": "none", "ok": True, "detail": "alert"}]:
            state = "done" if action["ok"] else "not done"
            typer.echo(f"  {action['action']:<20} {state}: {action['detail']}")

    @incidents.command("close")
    def close(
        incident_id: int = typer.Argument(..., help="The incident's number (from list)."),
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """Close an incident; a block it placed is lifted within seconds."""
        from bastion.errors import UnknownPluginError

        if not _store(database_url, config).close(incident_id):
            raise UnknownPluginError(f"no incident #{incident_id}; see bastion incidents list")
        typer.echo(f"closed incident #{incident_id}; any block it placed lifts within "
                   "seconds", err=True)
