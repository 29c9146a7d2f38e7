"""``bastion privacy``: find personal data in text, JSONL, CSV and Parquet files.

Module level imports only typer; the recognizers load inside the command. Reports show
masked examples only; ``--format json`` lists every detection (record, field, start,
end, entity type, score) inside the versioned report schema.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    privacy = typer.Typer(
        help="Personal data: find it (audit), remove it (anonymize), plan DP-SGD (dp-plan).",
        no_args_is_help=True
    )
    app.add_typer(privacy, name="privacy")

    @privacy.command("dp-plan")
    def dp_plan_cmd(
        n_samples: int = typer.Option(..., "--n-samples", help="Training set size."),
        batch_size: int = typer.Option(..., "--batch-size", help="Expected batch size."),
        epochs: float = typer.Option(..., "--epochs", help="Passes over the data."),
        delta: float | None = typer.Option(
            None, "--delta", help="Failure probability (default: a power of ten below 1/(10n))."),
        epsilon: str | None = typer.Option(
            None, "--epsilon", help="Target epsilon(s), comma-separated: plan the noise."),
        noise_multiplier: str | None = typer.Option(
            None, "--noise-multiplier", help="Noise multiplier(s): the epsilon each gives."),
        as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
    ) -> None:
        """Noise multiplier for a target epsilon, or the reverse (Opacus RDP and PRV)."""
        from bastion.cli._dp_plan import run

        run(n_samples=n_samples, batch_size=batch_size, epochs=epochs, delta=delta,
            epsilon=epsilon, noise_multiplier=noise_multiplier, as_json=as_json)

    @privacy.command("audit")
    def audit_cmd(
        path: Path = typer.Argument(..., help="A text, .jsonl, .csv/.tsv or .parquet file."),
        kind: str | None = typer.Option(
            None, "--kind", help="text, jsonl, csv or parquet (default: from the suffix)."
        ),
        text_field: str = typer.Option("text", "--text-field", help="JSONL field to scan."),
        id_field: str | None = typer.Option(None, "--id-field", help="JSONL record id field."),
        encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the file."),
        threshold: float = typer.Option(0.5, "--threshold", help="Minimum detection score."),
        entities: str | None = typer.Option(
            None, "--entities", help="Only these entity types (US_SSN,EMAIL_ADDRESS)."
        ),
        opt_in: str | None = typer.Option(
            None, "--opt-in", help="Also detect these opt-in types, comma-separated (UUID)."
        ),
        fmt: str | None = typer.Option(
            None, "--format", "-f", help="json, md, html or sarif (default: from --out, else json)."
        ),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write the report here."),
        fail_on: str = typer.Option("high", "--fail-on", help="Exit 1 at this severity or above."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Find PII; exit 1 when a finding reaches --fail-on."""
        types = (_split(entities), _split(opt_in) or [])
        raise typer.Exit(
            _audit(path, kind, text_field, id_field, encoding, threshold, types, fmt, out,
                   fail_on, quiet)
        )  # fmt: skip

    @privacy.command("anonymize")
    def anonymize_cmd(
        path: Path = typer.Argument(..., help="A text, .jsonl, .csv/.tsv or .parquet file."),
        out: Path = typer.Option(..., "--out", "-o", help="Anonymized copy (written atomically)."),
        preset: str | None = typer.Option(
            None, "--preset", help="hipaa-safe-harbor or gdpr-pseudonymize."
        ),
        config: Path | None = typer.Option(
            None, "--config", help="JSON settings; its keys override the preset's."
        ),
        key_file: Path | None = typer.Option(
            None, "--key-file", help="Pseudonymization key (else $BASTION_PII_KEY)."
        ),
        kind: str | None = typer.Option(None, "--kind", help="text, jsonl, csv or parquet."),
        text_field: str = typer.Option("text", "--text-field", help="JSONL field to scan."),
        encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the file."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Write a copy with identifiers replaced; report k-anonymity and l-diversity."""
        from bastion.cli._ui import err_console, progress_bars
        from bastion.privacy.anonymize import anonymize, load_config

        settings = load_config(preset, config)
        if key_file is not None:
            settings = settings.model_copy(update={"key_file": key_file})
        with progress_bars(quiet=quiet) as sink:
            result = anonymize(path, out, settings, kind=kind, text_field=text_field,
                               encoding=encoding, progress=sink)  # fmt: skip
        replaced = ", ".join(f"{e} {n}" for e, n in result.replaced.most_common()) or "nothing"
        err_console.print(f"{result.n_records} records written to {out}; replaced: {replaced}")
        if result.dropped_columns:
            err_console.print(f"dropped columns: {', '.join(result.dropped_columns)}")
        if result.malformed:
            lines = ", ".join(map(str, result.malformed[:20]))
            err_console.print(f"malformed rows (scrubbed as text) at lines: {lines}")
        if result.k_anonymity is not None:
            qi = ", ".join(result.quasi_identifiers)
            l_div = "" if result.l_diversity is None else f", l-diversity {result.l_diversity}"
            err_console.print(f"quasi-identifiers {qi}: k-anonymity {result.k_anonymity}{l_div}")


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _audit(
    path: Path,
    kind: str | None,
    text_field: str,
    id_field: str | None,
    encoding: str,
    threshold: float,
    types: tuple[list[str] | None, list[str]],
    fmt: str | None,
    out: Path | None,
    fail_on: str,
    quiet: bool,
) -> int:
    import platform
    import time
    from datetime import UTC, datetime

    from rich.markup import escape

    from bastion import __version__
    from bastion.cli._ui import err_console, print_summary, progress_bars
    from bastion.errors import ConfigError
    from bastion.privacy.audit import audit
    from bastion.report.finding import Report, RunMetadata, Severity
    from bastion.report.write import render, report_format, write_report

    try:
        level = Severity(fail_on)
    except ValueError:
        raise ConfigError(
            f"--fail-on {fail_on!r}: use info, low, medium, high or critical"
        ) from None
    chosen = report_format(fmt, out, "json")
    started, clock = datetime.now(UTC), time.perf_counter()
    with progress_bars(quiet=quiet or out is None) as sink:
        result = audit(path, kind=kind, text_field=text_field, id_field=id_field,
                       encoding=encoding, threshold=threshold, entities=types[0],
                       opt_in=types[1], progress=sink)  # fmt: skip
    report = Report(
        metadata=RunMetadata(
            tool_version=__version__,
            command="privacy audit",
            started_at=started,
            finished_at=datetime.now(UTC),
            config={
                "kind": result.kind,
                "threshold": threshold,
                "entities": types[0],
                "opt_in": types[1],
                "records": result.n_records,
                "cells": result.n_cells,
                "columns": [vars(c) for c in result.columns],
            },
            checks_run=["pii"],
            timings_s={"audit": round(time.perf_counter() - clock, 3)},
            python=platform.python_version(),
            platform=platform.platform(),
        ),
        findings=result.findings(),
    )
    if out is None:
        sys.stdout.write(render(report, chosen))
    else:
        write_report(report, out, chosen)
        if not quiet:
            print_summary(report)
            err_console.print(f"Report written to [bold]{escape(str(out))}[/]")
    worst = report.worst()
    return 1 if worst is not None and worst >= level else 0
