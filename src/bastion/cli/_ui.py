"""What the CLI draws: Rich progress bars fed by library events, and result tables.

Everything goes to stderr, so a report written to stdout (``--format json``) stays
clean. Nothing is drawn with ``--quiet`` or when stderr is not a terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from bastion.progress import ProgressEvent, ProgressSink
from bastion.report.finding import Report, Severity

__all__ = ["SEVERITY_STYLE", "err_console", "print_summary", "progress_bars"]

err_console = Console(stderr=True, highlight=False)

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


@contextmanager
def progress_bars(*, quiet: bool) -> Iterator[ProgressSink | None]:
    """A progress sink drawing one bar per task, or None when nothing should be drawn."""
    if quiet or not err_console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("[dim]{task.fields[message]}"),
        console=err_console, transient=True,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def sink(event: ProgressEvent) -> None:
            if event.task not in tasks:
                tasks[event.task] = bars.add_task(event.task, total=event.total, message="")
            bars.update(
                tasks[event.task], completed=event.completed, total=event.total,
                message=event.message,
            )

        yield sink


def print_summary(report: Report, *, console: Console = err_console) -> None:
    """A table of findings (worst first), then errors and skipped checks."""
    if report.findings:
        table = Table(title="Findings", title_justify="left", expand=False)
        table.add_column("severity", no_wrap=True)
        table.add_column("finding", overflow="fold", ratio=3)
        table.add_column("check", no_wrap=True)
        table.add_column("where", overflow="fold", ratio=1)
        for f in report.findings:
            where = PurePath(f.location).name if f.location else ""
            table.add_row(f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value}",
                          escape(f.title), f.check, escape(where))
        console.print(table)
    else:
        console.print("[green]No findings.")
    for e in report.errors:
        console.print(f"[red]error[/] {escape(e.check)}: {escape(e.message)}")
    for s in report.skipped:
        console.print(f"[dim]skipped {escape(s.check)}: {escape(s.reason)}")
