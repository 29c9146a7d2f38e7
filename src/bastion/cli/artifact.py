"""``bastion artifact scan|sign|verify``: is a model file safe to load, and is it the one
its publisher signed? Files are scanned without loading them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from bastion.report.finding import Report
    from bastion.supplychain import ScanResult

ReportFormat = Literal["html", "json", "md", "sarif"]


class ArtifactScanSettings(BaseModel):
    """What ``bastion artifact scan`` can be told, from flags, BASTION_ARTIFACT_* or --config."""

    model_config = ConfigDict(extra="forbid")

    format: ReportFormat | None = None
    out: Path | None = None
    fail_on: Literal["info", "low", "medium", "high", "critical"] = "high"
    quiet: bool = False
    hashes: bool = False


def register(app: typer.Typer) -> None:
    artifact = typer.Typer(
        help="Model-file security: scan files without loading them.", no_args_is_help=True
    )
    app.add_typer(artifact, name="artifact")

    @artifact.command("scan")
    def scan(
        paths: list[Path] = typer.Argument(..., help="Files or folders (scanned recursively)."),
        fmt: str | None = typer.Option(
            None, "--format", "-f", help="json, sarif, html or md (default: from --out, "
            "else json to stdout)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write the report here."),
        fail_on: str | None = typer.Option(
            None, help="Exit 1 when a finding is at least this severe (default high)."),
        quiet: bool | None = typer.Option(None, "--quiet", "-q", help="No progress bar."),
        hashes: bool | None = typer.Option(
            None, "--hash/--no-hash", help="Record each file's sha256 in the report."),
        config: Path | None = typer.Option(None, help="TOML file with an \\[artifact] table."),
    ) -> None:
        """Scan model files for code that runs on load; exit 1 at --fail-on, 3 if none applied."""
        from bastion.cli._settings import resolve

        flags = {"format": fmt, "out": out, "fail_on": fail_on, "quiet": quiet,
                 "hashes": hashes}
        settings = resolve(ArtifactScanSettings, "artifact", flags, config)
        raise typer.Exit(_run(paths, settings))

    @artifact.command("bom")
    def bom(
        paths: list[Path] = typer.Argument(..., help="Model files or folders."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write the BOM here."),
        environment: bool = typer.Option(
            True, "--environment/--no-environment",
            help="Also list the Python packages installed here."),
    ) -> None:
        """Write a CycloneDX 1.6 ML-BOM: model files (hash, format, verdict), packages."""
        from bastion.supplychain.bom import build_bom

        text = build_bom(paths, environment=environment)
        if out is None:
            sys.stdout.write(text + "\n")
        else:
            out.write_text(text + "\n", encoding="utf-8")

    @artifact.command("sign")
    def sign(
        path: Path = typer.Argument(..., help="File or folder to sign."),
        key: Path = typer.Option(..., "--key", "-k", help="EC private key (PEM)."),
        signature: Path | None = typer.Option(
            None, "--signature", "-s", help="Where to write it (default PATH.sig)."),
        password: str | None = typer.Option(
            None, envvar="BASTION_ARTIFACT_KEY_PASSWORD", help="Password of the key."),
    ) -> None:
        """Sign a model file or folder (OpenSSF model-signing format, local key)."""
        from bastion.cli._ui import err_console
        from bastion.supplychain.signing import sign as sign_path

        out = sign_path(path, private_key=key, signature=signature, password=password)
        err_console.print(f"Signed {path} -> {out}")

    @artifact.command("verify")
    def verify(
        path: Path = typer.Argument(..., help="File or folder to check."),
        key: Path = typer.Option(..., "--key", "-k", help="EC public key (PEM)."),
        signature: Path | None = typer.Option(
            None, "--signature", "-s", help="Signature to check (default PATH.sig)."),
    ) -> None:
        """Verify a signature; exit 1 when any file changed, appeared or disappeared."""
        from rich.markup import escape

        from bastion.cli._ui import err_console
        from bastion.supplychain.signing import verify as verify_path

        result = verify_path(path, public_key=key, signature=signature)
        if result.ok:
            err_console.print(f"[green]Verified[/] {escape(str(path))}")
            return
        err_console.print(f"[red]Verification failed[/] for {escape(str(path))}:")
        for problem in result.problems:
            err_console.print(f"  {escape(problem)}")
        raise typer.Exit(1)


def _run(paths: list[Path], settings: ArtifactScanSettings) -> int:
    import time
    from datetime import UTC, datetime

    from rich.markup import escape

    from bastion.cli._ui import err_console, print_summary, progress_bars
    from bastion.report.finding import Severity
    from bastion.report.write import render, report_format, write_report
    from bastion.supplychain import scan_path

    fmt = report_format(settings.format, settings.out, "json")
    to_stdout = settings.out is None
    started, clock = datetime.now(UTC), time.perf_counter()
    with progress_bars(quiet=settings.quiet or to_stdout) as sink:
        result = scan_path(paths, progress=sink, hashes=settings.hashes)
    report = _report(result, settings, started, time.perf_counter() - clock)
    if settings.out is None:
        sys.stdout.write(render(report, fmt))
    else:
        write_report(report, settings.out, fmt)
        if not settings.quiet:
            print_summary(report)
            err_console.print(f"Report written to [bold]{escape(str(settings.out))}[/]")
    if not result.files:
        return 3
    if result.at_or_above(Severity(settings.fail_on)) or result.errors:
        return 1
    return 0


def _report(
    result: ScanResult, settings: ArtifactScanSettings, started: object, seconds: float
) -> Report:
    import platform
    from datetime import UTC, datetime

    from bastion import __version__
    from bastion.report.finding import (
        ArtifactInfo,
        CheckError,
        Report,
        RunMetadata,
        SkippedCheck,
    )

    assert isinstance(started, datetime)
    metadata = RunMetadata(
        tool_version=__version__, command="artifact scan", started_at=started,
        finished_at=datetime.now(UTC), config=settings.model_dump(mode="json", exclude={"quiet"}),
        artifacts=[ArtifactInfo(role="model", path=f.path, sha256=f.sha256,
                                size_bytes=f.size_bytes, format=f.format) for f in result.files],
        checks_run=["supplychain"] if result.files else [],
        timings_s={"supplychain": round(seconds, 4)},
        python=sys.version.split()[0], platform=platform.platform(),
    )
    return Report(
        metadata=metadata, findings=result.findings,
        errors=[CheckError(check="supplychain", message=f"{e.path}: {e.message}")
                for e in result.errors],
        skipped=[SkippedCheck(check="supplychain", reason=f"{s.path}: {s.reason}")
                 for s in result.skipped],
    )
