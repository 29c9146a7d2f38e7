"""Render a report in any registered format and write it atomically.

A renderer is a function ``(Report) -> str`` registered in ``RENDERERS``. Writing goes
to a temporary file in the destination folder, is flushed to disk, then renamed over
the destination: a reader sees the old file or the new one, never half of one, and a
failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bastion.errors import ConfigError, InputNotFoundError
from bastion.registry import Registry
from bastion.report.finding import Report

__all__ = ["RENDERERS", "Renderer", "format_from_suffix", "render", "report_format",
           "write_report"]

Renderer = Callable[[Report], str]

RENDERERS: Registry[Renderer] = Registry(
    "report format",
    modules=(
        "bastion.report.render_json",
        "bastion.report.render_markdown",
        "bastion.report.render_html",
        "bastion.report.render_sarif",
    ),
)

_SUFFIXES = {".json": "json", ".md": "md", ".markdown": "md", ".html": "html",
             ".htm": "html", ".sarif": "sarif"}


def format_from_suffix(path: Path) -> str:
    """The format a file name asks for (``x.sarif.json`` is SARIF)."""
    name = path.name.lower()
    if name.endswith(".sarif.json"):
        return "sarif"
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise ConfigError(
            f"cannot tell the report format from {path.name!r}: use a .html, .json, .md or "
            ".sarif name, or --format"
        ) from None


def report_format(fmt: str | None, path: Path | None, default: str) -> str:
    """The format to write, checked before any work: ``fmt``, else ``path``'s suffix, else
    ``default``; an unknown format or a missing output folder is a one-line error now,
    not after a long run."""
    chosen = fmt or (format_from_suffix(path) if path is not None else default)
    RENDERERS.get(chosen)
    if path is not None and not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise InputNotFoundError(f"folder {path.parent} does not exist: create it or choose "
                                 "another report path")
    return chosen


def render(report: Report, fmt: str) -> str:
    """The report as text in format ``fmt`` (json, md, html, sarif)."""
    return RENDERERS.get(fmt)(report)


def write_report(report: Report, path: Path, fmt: str | None = None) -> Path:
    """Render, then atomically replace ``path``; the parent folder must exist."""
    text = render(report, fmt or format_from_suffix(path))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputNotFoundError(f"folder {parent} does not exist: create it or choose --out")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
