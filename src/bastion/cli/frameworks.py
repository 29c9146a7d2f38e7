"""``bastion frameworks list|show``: the OWASP ML Top 10 and MITRE ATLAS tables."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="OWASP ML Top 10 and MITRE ATLAS ids that findings map to.",
                        no_args_is_help=True)
    app.add_typer(group, name="frameworks")

    @group.command("list")
    def list_(
        framework: str | None = typer.Option(None, help="owasp or atlas (default: both)."),
        fmt: str = typer.Option("table", "--format", help="table or json."),
    ) -> None:
        """List every framework id bastion knows, with its name and link."""
        from bastion.errors import ConfigError
        from bastion.report.frameworks import atlas_version, entries

        if framework not in (None, "owasp", "atlas"):
            raise ConfigError(f"--framework must be owasp or atlas, not {framework!r}")
        if fmt not in ("table", "json"):
            raise ConfigError(f"--format must be table or json, not {fmt!r}")
        items = entries(("owasp" if framework == "owasp" else "atlas") if framework else None)
        if fmt == "json":
            import json

            typer.echo(json.dumps([e.model_dump(mode="json") for e in items], indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"OWASP ML Top 10 (2023) · MITRE ATLAS {atlas_version()}")
        for column in ("id", "name", "kind", "tactics"):
            table.add_column(column)
        for e in items:
            table.add_row(e.id, e.name, e.kind, ", ".join(e.tactics))
        Console().print(table)

    @group.command("show")
    def show(framework_id: str = typer.Argument(..., help="e.g. ML01 or AML.T0043")) -> None:
        """Name, link and tactics of one id."""
        from bastion.report.frameworks import lookup

        e = lookup(framework_id)
        typer.echo(f"{e.id}  {e.name}\n{e.framework} {e.kind}\n{e.url}")
        if e.parent:
            typer.echo(f"sub-technique of {e.parent} ({lookup(e.parent).name})")
        for tactic in e.tactics:
            typer.echo(f"tactic {tactic}: {lookup(tactic).name}")
