"""``bastion scan``: run every applicable check on a model and its data, write a report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from pydantic import BaseModel, ConfigDict

from bastion.report.finding import Severity

if TYPE_CHECKING:
    from bastion.scan.runner import NamedTarget

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
    # Check tuning (robustness, membership, inversion); see _check_options.
    eps: list[float] | None = None
    norm: Literal["linf", "l2"] | None = None
    surrogate: str | None = None
    surrogate_factory: str | None = None
    recipe: str | None = None
    sensitive_column: str | None = None
    jobs: int | None = None


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
        eps: str | None = typer.Option(
            None, help="Robustness: comma-separated perturbation budgets (default: a grid "
            "scaled to the input range)."),
        norm: str | None = typer.Option(None, help="Robustness: linf (default) or l2."),
        surrogate: str | None = typer.Option(
            None, help="Robustness: a local model to craft transfer attacks on."),
        surrogate_factory: str | None = typer.Option(
            None, help="module:function for the surrogate's architecture (weights files)."),
        recipe: str | None = typer.Option(
            None, help="Membership: module:function that trains a reference model "
            "(train(x, y, *, seed) -> Classifier); scikit-learn models need none."),
        sensitive_column: str | None = typer.Option(
            None, help="Inversion: a column name or index to run attribute inference on."),
        jobs: int | None = typer.Option(
            None, help="Membership: reference models trained in parallel (default 1)."),
        demo: bool = typer.Option(False, "--demo", help="Scan the built-in demo."),
        config: Path | None = typer.Option(None, help="TOML file with a \\[scan] table."),
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
            "eps": _floats(eps, "--eps") if eps else None, "norm": norm,
            "surrogate": surrogate, "surrogate_factory": surrogate_factory, "recipe": recipe,
            "sensitive_column": sensitive_column, "jobs": jobs,
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
    from bastion.report.write import render, report_format, write_report
    from bastion.scan import ScanContext
    from bastion.scan.inputs import load_targets
    from bastion.scan.runner import exit_code, run_scan, select_checks

    fmt = report_format(settings.format, settings.out, "html")
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
        options = _check_options(settings, targets, demo=demo)
        report = run_scan(
            targets, checks=chosen,
            ctx=ScanContext(seed=settings.seed, profile=settings.profile, progress=sink,
                            options=options),
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


def _floats(text: str, flag: str) -> list[float]:
    from bastion.errors import ConfigError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated numbers, e.g. 0.01,0.03") from None
    if not values or any(not v > 0 for v in values):
        raise ConfigError(f"{flag} takes positive numbers, e.g. 0.01,0.03")
    return values


def _check_options(settings: ScanSettings, targets: list[NamedTarget], *,
                   demo: bool) -> dict[str, Any]:
    """The per-check settings the checks read from ``ScanContext.options``."""
    from bastion.errors import ConfigError

    options: dict[str, Any] = {}
    if settings.eps:
        options["eps"] = settings.eps
    if settings.norm:
        options["norm"] = settings.norm
    if settings.recipe:
        options["membership_recipe"] = settings.recipe
    if settings.jobs is not None:
        if settings.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, not {settings.jobs}")
        options["n_jobs"] = settings.jobs
    if settings.sensitive_column is not None:
        col = settings.sensitive_column
        options["sensitive_column"] = int(col) if col.isdigit() else col
    if settings.surrogate:
        model = next((t.target.model for t in targets if t.target.model is not None), None)
        if demo or model is None:
            raise ConfigError("--surrogate needs --model (and is not used with --demo)")
        from bastion.models import load_model

        options["surrogate"] = load_model(
            settings.surrogate, input_shape=model.input_shape, bounds=model.bounds,
            n_classes=model.n_classes, factory=settings.surrogate_factory)
    return options


def _set_threads(threads: int | None) -> None:
    """Small models run many tiny torch ops, where a thread pool costs more than it saves."""
    from bastion.errors import ConfigError

    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, not {threads}")
    import torch

    torch.set_num_threads(threads)
