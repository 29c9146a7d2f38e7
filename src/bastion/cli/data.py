"""``bastion data audit``: find poisoned or mislabeled training rows, write a cleaned copy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from bastion.data.dataset import Dataset


def register(app: typer.Typer) -> None:
    data = typer.Typer(help="Training data integrity: poisoning and label errors.",
                       no_args_is_help=True)
    app.add_typer(data, name="data")

    @data.command("audit")
    def audit_cmd(
        path: Path = typer.Argument(..., help="Labelled data (npz/csv/parquet/image folder)."),
        model: str | None = typer.Option(
            None, "--model", "-m", help="The model trained on it; its outputs feed the "
            "spectral and clustering detectors."),
        label: str | None = typer.Option(None, help="Label column for CSV/Parquet data."),
        input_shape: str | None = typer.Option(
            None, help="Model input shape without the batch axis, e.g. 1,8,8."),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Write the data without suspect rows to this new .npz."),
        fmt: str | None = typer.Option(
            None, "--format", "-f", help="json, md, html or sarif (default: from --report, "
            "else json)."),
        report_path: Path | None = typer.Option(
            None, "--report", "-r", help="Report file; the report goes to stdout without it."),
        expected_fraction: float = typer.Option(
            0.05, help="Share of rows you suspect are poisoned (spectral signatures)."),
        neural_cleanse_steps: int = typer.Option(
            150, help="Neural Cleanse optimisation steps when --model gives gradients "
            "(0 skips it)."),
        fail_on: str = typer.Option("high", help="Exit 1 at this severity or above."),
        seed: int = typer.Option(0, help="Seed for every random choice."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
    ) -> None:
        """Score every row for poisoning and label errors; exit 1 at --fail-on."""
        raise typer.Exit(_audit(path, model, label, input_shape, out, fmt, report_path,
                                expected_fraction, neural_cleanse_steps, fail_on, seed,
                                quiet))


def _write_npz(dataset: Dataset, out: Path) -> None:
    """Save ``x``, ``y`` (and class names) to ``out`` atomically: a temp file, then rename."""
    import contextlib
    import os
    import tempfile

    import numpy as np

    from bastion.errors import InputNotFoundError

    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputNotFoundError(f"folder {parent} does not exist: create it or choose --out")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            arrays: dict[str, Any] = {"x": dataset.x}  # numpy stubs mistype **kwargs
            if dataset.y is not None:
                arrays["y"] = dataset.y
            if dataset.class_names:
                arrays["class_names"] = np.array(dataset.class_names, dtype=str)
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _audit(path: Path, model: str | None, label: str | None, input_shape: str | None,
           out: Path | None, fmt: str | None, report_path: Path | None,
           expected_fraction: float, neural_cleanse_steps: int, fail_on: str, seed: int,
           quiet: bool) -> int:
    import platform
    import time
    from datetime import UTC, datetime

    from rich.markup import escape

    from bastion import __version__
    from bastion.cli._ui import err_console, print_summary
    from bastion.detection.poisoning.audit import audit
    from bastion.errors import ConfigError, InvalidDataError
    from bastion.report.finding import Report, RunMetadata, Severity
    from bastion.report.write import render, report_format, write_report
    from bastion.scan.checks.poisoning import audit_findings
    from bastion.scan.inputs import load_targets
    from bastion.scan.runner import exit_code

    try:
        level = Severity(fail_on)
    except ValueError:
        raise ConfigError(f"--fail-on {fail_on!r}: use info, low, medium, high or "
                          "critical") from None
    if out is not None and (out.suffix.lower() != ".npz"
                            or (out.exists() and out.resolve() == path.resolve())):
        raise ConfigError(f"--out {out}: give a new .npz file; the input is never overwritten")
    chosen = report_format(fmt, report_path, "json")
    started, clock = datetime.now(UTC), time.perf_counter()
    targets, artifacts = load_targets(model=model, data=path, test=None, label=label,
                                      input_shape=input_shape)
    target = targets[0].target
    data = target.train if target.train is not None else target.test
    if data is None or data.y is None:
        raise InvalidDataError(f"{path} has no labels: name the label column with --label "
                               "or store a 'y' array")
    result = audit(data, model=target.model, expected_fraction=expected_fraction,
                   neural_cleanse_steps=neural_cleanse_steps, seed=seed)
    report = Report(
        metadata=RunMetadata(
            tool_version=__version__, command="data audit", started_at=started,
            finished_at=datetime.now(UTC),
            config={"expected_fraction": expected_fraction, "seed": seed,
                    "neural_cleanse_steps": neural_cleanse_steps,
                    "rows": len(data), "suspect": int(result.suspect.sum()),
                    "cleaned": str(out) if out else None},
            artifacts=list(artifacts), checks_run=["poisoning"],
            timings_s={"audit": round(time.perf_counter() - clock, 3)},
            python=platform.python_version(), platform=platform.platform(),
        ),
        findings=audit_findings(result, data),
    )
    if out is not None:
        _write_npz(result.cleaned(data), out)
    if report_path is None:
        sys.stdout.write(render(report, chosen))
    else:
        write_report(report, report_path, chosen)
        if not quiet:
            print_summary(report)
            err_console.print(f"Report written to [bold]{escape(str(report_path))}[/]")
    if out is not None and not quiet:
        err_console.print(f"{len(data) - int(result.suspect.sum())} of {len(data)} rows "
                          f"written to [bold]{escape(str(out))}[/]")
    return exit_code(report, level)
