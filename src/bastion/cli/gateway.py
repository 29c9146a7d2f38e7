"""``bastion serve``, ``bastion gateway token create|list|revoke`` and
``bastion audit verify``: run the secure model server and administer it.

All three read the ``[gateway]`` table of ``--config`` (under ``BASTION_GATEWAY_*`` and
flags). Heavy imports (FastAPI, SQLAlchemy) happen inside the commands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

_CONFIG = typer.Option(None, "--config", "-c", help="TOML file with a \\[gateway] table.")
_DB = typer.Option(None, "--database-url", help="SQLAlchemy URL (default from settings).")


def _settings(flags: dict[str, Any], config: Path | None) -> Any:
    from bastion.cli._settings import resolve
    from bastion.gateway.settings import GatewaySettings

    return resolve(GatewaySettings, "gateway", flags, config)


def _token_store(settings: Any) -> Any:
    from bastion.gateway.app import pepper_from
    from bastion.gateway.db import open_database
    from bastion.gateway.tokens import TokenStore

    return TokenStore(open_database(settings.database_url), pepper_from(settings),
                      settings.roles)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: str | None = typer.Option(None, "--model", "-m", help="Model file to serve."),
        previous_model: str | None = typer.Option(
            None, help="Previous version, kept for rollback."),
        input_shape: str | None = typer.Option(
            None, help="Shape of one input, e.g. 64 or 3,32,32 (if the file lacks it)."),
        host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1)."),
        port: int | None = typer.Option(None, help="Port (default 8000)."),
        workers: int | None = typer.Option(None, help="Worker processes (default 1)."),
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """Serve a model behind auth, rate limits, validation, output hardening and audit."""
        from bastion.gateway.server import serve as run

        shape = [int(d) for d in input_shape.split(",")] if input_shape else None
        settings = _settings({"model": model, "previous_model": previous_model,
                              "input_shape": shape, "host": host, "port": port,
                              "workers": workers, "database_url": database_url}, config)
        typer.echo(f"bastion gateway on http://{settings.host}:{settings.port}", err=True)
        run(settings, config=config)

    gateway = typer.Typer(help="Administer the gateway: API tokens.", no_args_is_help=True)
    app.add_typer(gateway, name="gateway")
    token = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
    gateway.add_typer(token, name="token")

    @token.command("create")
    def create(
        name: str = typer.Option(..., help="Who or what the token is for."),
        role: str = typer.Option("client", help="Role (its scopes and output level)."),
        scope: list[str] | None = typer.Option(
            None, "--scope", help="Narrow the role's scopes (repeatable)."),
        expires_in: str | None = typer.Option(None, help="Lifetime, e.g. 30d, 12h, 15m."),
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """Create a token; it is printed once and stored only as a peppered hash."""
        from bastion.gateway.tokens import parse_duration

        store = _token_store(_settings({"database_url": database_url}, config))
        ttl = parse_duration(expires_in) if expires_in else None
        secret, info = store.create(name=name, role=role,
                                    scopes=tuple(scope) if scope else None, ttl_s=ttl)
        typer.echo(f"token id {info.id}, role {info.role}, scopes {' '.join(info.scopes)}",
                   err=True)
        typer.echo("store it now: it is not kept and cannot be shown again", err=True)
        typer.echo(secret)

    @token.command("list")
    def list_(
        as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """List tokens (ids, names, roles, expiry, revoked) — never their secrets."""
        store = _token_store(_settings({"database_url": database_url}, config))
        rows = store.list()
        if as_json:
            typer.echo(json.dumps([{**r.__dict__, "scopes": list(r.scopes)} for r in rows]))
            return
        now = time.time()
        for r in rows:
            state = ("revoked" if r.revoked else "expired" if r.expired(now) else "active")
            expires = "never" if r.expires is None else time.strftime(
                "%Y-%m-%d %H:%M", time.gmtime(r.expires))
            typer.echo(f"{r.id}  {r.name:<20} {r.role:<10} {' '.join(r.scopes):<28} "
                       f"expires {expires:<16} {state}")

    @token.command("revoke")
    def revoke(
        token_id: str = typer.Argument(..., help="The token's id (from create or list)."),
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """Revoke a token: every gateway refuses it from its next request."""
        from bastion.errors import UnknownPluginError

        store = _token_store(_settings({"database_url": database_url}, config))
        if not store.revoke(token_id):
            raise UnknownPluginError(f"no token with id {token_id}; see bastion gateway token list")
        typer.echo(f"revoked {token_id}", err=True)

    audit = typer.Typer(help="The gateway's tamper-evident audit log.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command("verify")
    def verify(
        database_url: str | None = _DB,
        config: Path | None = _CONFIG,
    ) -> None:
        """Check the hash chain: exit 0 if intact, 1 if a record was changed or deleted."""
        from sqlalchemy.exc import SQLAlchemyError

        from bastion.errors import ConfigError
        from bastion.gateway.audit import verify_chain
        from bastion.gateway.db import open_database

        settings = _settings({"database_url": database_url}, config)
        try:
            result = verify_chain(open_database(settings.database_url, create=False))
        except SQLAlchemyError as err:
            raise ConfigError(f"cannot read an audit log at database_url "
                              f"({type(err).__name__}); check the URL") from None
        for problem in result.problems:
            typer.echo(f"tampered: {problem}")
        typer.echo(f"{result.n_records} records, head {result.head_hash}: "
                   f"{'intact' if result.ok else 'NOT intact'}")
        raise typer.Exit(0 if result.ok else 1)
