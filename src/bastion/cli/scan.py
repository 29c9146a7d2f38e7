"""``bastion scan``: run every applicable check on a model and its data, write a report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import typer
from pydantic import BaseModel, ConfigDict

from bastion.report.finding import Severity

ReportFormat = Literal["html", "json", "md", "sarif"]
Profile = Literal["quick", "standard", "thorough"]


class ScanSettings(BaseModel):
    """Everything ``bastion scan`` can be told, from flags, BASTION_SCAN_* or --config."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    data: Path | None = None
    test: Path | None = None
    label: str | None = None
    input_shape: str | None = None
    factory: str | None = None
    n_classes: int | None = None
    token: str | None = None
    trust: list[Path] | None = None
    format: ReportFormat | None = None
    out: Path | None = None
    fail_on: Severity = Severity.HIGH
    checks: list[str] | None = None
    profile: Profile = "quick"
    seed: int = 0
    threads: int | None = None
    quiet: bool = False


def register(app: typer.Typer) -> None:
    @app.command("scan")
    def scan(
        model: str | None = typer.Option(
            None, "--model", "-m", help="Model file (ONNX, TorchScript, .pt2, safetensors, "
            "skops) or an http(s) endpoint."),
        data: Path | None = typer.Option(
            None, "--data", "-d", help="Training data (npz/npy/csv/parquet/image folder)."),
        test: Path | None = typer.Option(None, "--test", "-t", help="Held-out test data."),
        label: str | None = typer.Option(None, help="Label column for CSV/Parquet data."),
        input_shape: str | None = typer.Option(
            None, help="Model input shape without the batch axis, e.g. 1,8,8."),
        factory: str | None = typer.Option(
            None, help="module:function that builds the architecture for a weights file."),
        n_classes: int | None = typer.Option(
            None, help="Number of classes, for models that do not record it (URLs)."),
        trust: list[Path] | None = typer.Option(
            None, help="Load this model file even if the scanner flags it (repeatable; "
            "recorded in the report)."),
        fmt: str | None = typer.Option(
            None, "--format", "-f", help="html, json, md or sarif (default: from --out, "
            "else html)."),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Report file; json/md/sarif go to stdout without it."),
        fail_on: str | None = typer.Option(
            None, help="Exit 1 when a finding is at least this severe (default high)."),
        checks: str | None = typer.Option(None, help="Comma-separated checks to run."),
        profile: str | None = typer.Option(
            None, help="Attack effort: quick, standard or thorough."),
        seed: int | None = typer.Option(None, help="Seed for every random choice."),
        threads: int | None = typer.Option(
            None, help="torch threads (default: torch's; 1 for --demo, whose models are tiny)."),
        quiet: bool | None = typer.Option(None, "--quiet", "-q", help="No progress bars."),
        demo: bool = typer.Option(False, "--demo", help="Scan the built-in demo."),
        config: Path | None = typer.Option(None, help="TOML file with a [scan] table."),
        list_checks: bool = typer.Option(False, "--list-checks", help="List checks and exit."),
    ) -> None:
        """Audit a model and its data; exit 1 when findings reach --fail-on."""
        from bastion.cli._settings import resolve

        if list_checks:
            _list_checks()
            return
        flags = {
            "model": model, "data": data, "test": test, "label": label,
            "input_shape": input_shape, "factory": factory, "n_classes": n_classes,
            "trust": trust or None, "format": fmt, "out": out,
            "fail_on": fail_on, "checks": checks.split(",") if checks else None,
            "profile": profile, "seed": seed, "threads": threads, "quiet": quiet,
        }
        settings = resolve(ScanSettings, "scan", flags, config)
        raise typer.Exit(_run(settings, demo=demo))


def _list_checks() -> None:
    from rich.table import Table

    from bastion.cli._ui import err_console
    from bastion.scan import CHECKS

    table = Table(title="Checks")
    for column in ("name", "title", "needs", "OWASP", "ATLAS"):
        table.add_column(column)
    for name, cls in CHECKS.items():
        table.add_row(name, cls.title, ", ".join(cls.needs), ", ".join(cls.owasp),
                      ", ".join(cls.atlas))
    err_console.print(table)


def _run(settings: ScanSettings, *, demo: bool) -> int:
    from rich.markup import escape

    from bastion.cli._ui import err_console, print_summary, progress_bars
    from bastion.errors import ConfigError
    from bastion.report.write import format_from_suffix, render, write_report
    from bastion.scan import ScanContext
    from bastion.scan.inputs import load_targets
    from bastion.scan.runner import exit_code, run_scan, select_checks

    fmt = settings.format or (format_from_suffix(settings.out) if settings.out else "html")
    out = settings.out
    if demo:
        out = out or Path("bastion-demo-report.html")
    elif settings.model is None and settings.data is None and settings.test is None:
        raise ConfigError("nothing to scan: give --model and/or --data (or try --demo)")
    if out is None and fmt == "html":
        out = Path("bastion-report.html")
    to_stdout = out is None
    chosen = select_checks(settings.checks)
    _set_threads(settings.threads if settings.threads is not None else (1 if demo else None))
    with progress_bars(quiet=settings.quiet or to_stdout) as sink:
        if demo:
            from bastion.demo import build_demo

            # The demo's model files stay next to the report, so a reader can inspect them.
            models = (out.parent if out else Path(".")) / "bastion-demo-models"
            models.mkdir(parents=True, exist_ok=True)
            targets, artifacts = build_demo(models, seed=settings.seed, progress=sink)
        else:
            targets, artifacts = load_targets(
                model=settings.model, data=settings.data, test=settings.test,
                label=settings.label, input_shape=settings.input_shape,
                factory=settings.factory, n_classes=settings.n_classes, token=settings.token,
                trust=settings.trust or [],
            )
        report = run_scan(
            targets, checks=chosen,
            ctx=ScanContext(seed=settings.seed, profile=settings.profile, progress=sink),
            command="scan --demo" if demo else "scan",
            config=settings.model_dump(mode="json", exclude={"quiet", "token"}),
            artifacts=artifacts,
        )
    if to_stdout:
        sys.stdout.write(render(report, fmt))
    elif out is not None:
        write_report(report, out, fmt)
        if not settings.quiet:
            print_summary(report)
            err_console.print(f"Report written to [bold]{escape(str(out))}[/]")
    return exit_code(report, settings.fail_on)


def _set_threads(threads: int | None) -> None:
    """Small models run many tiny torch ops, where a thread pool costs more than it saves."""
    from bastion.errors import ConfigError

    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, not {threads}")
    import torch

    torch.set_num_threads(threads)
