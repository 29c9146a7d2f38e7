"""Progress events: the library reports what it is doing; only the CLI draws it.

A long routine takes ``progress: ProgressSink | None`` and calls it with events. The
CLI passes a sink that draws Rich progress bars on a terminal and nothing with
``--quiet`` or ``--format json``; tests pass a list's ``append``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressEvent", "ProgressSink", "emit"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """``completed`` of ``total`` units of ``task`` are done (``total`` None: unknown)."""

    task: str
    completed: int
    total: int | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.total is not None and self.completed >= self.total


ProgressSink = Callable[[ProgressEvent], None]


def emit(
    sink: ProgressSink | None, task: str, completed: int, total: int | None = None,
    message: str = "",
) -> None:
    """Send an event to ``sink`` if there is one."""
    if sink is not None:
        sink(ProgressEvent(task, completed, total, message))
