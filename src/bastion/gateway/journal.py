"""The audit journal: a local append-only file that makes an audit record safe against
``kill -9`` before the database has it (``audit_ack = "journal"``).

Each record is one JSON line, written with a single ``write`` to a file opened with
``O_APPEND``: once that call returns the record is in the kernel's page cache, which
outlives the process (not a power cut: that needs an fsync, which ``audit_ack =
"commit"`` with ``sqlite_synchronous = FULL`` or PostgreSQL pays for). The audit
writer commits the records to the database in batches and then drops the segments it
has committed.

Each process holds an exclusive ``flock`` on its own segments. A segment whose lock can
be taken belongs to a dead process: :func:`orphans` hands its records over to be
replayed into the database (those not already there), then deletes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

from bastion.errors import ConfigError

__all__ = ["Journal", "journal_folder", "orphans"]

log = logging.getLogger("bastion.gateway")

_SUFFIX = ".journal"
_SEGMENT_BYTES = 64 << 20


def journal_folder(database_url: str, configured: Path | None) -> Path:
    """Where the journal lives: as configured, else beside a SQLite database file."""
    if configured is not None:
        return configured
    if url_path := _sqlite_file(database_url):
        return Path(url_path + ".audit-journal")
    raise ConfigError("audit_ack = 'journal' (the default) needs audit_journal_dir for this "
                      "database: set it to a local folder, or set audit_ack = 'commit'")


def _sqlite_file(url: str) -> str | None:
    if not url.startswith("sqlite") or ":memory:" in url or "///" not in url:
        return None
    return url.split("///", 1)[1].split("?", 1)[0] or None


class Journal:
    """This process's journal: append records, drop segments once they are committed."""

    def __init__(self, folder: Path, *, segment_bytes: int = _SEGMENT_BYTES) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._n_segments = 0
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._appended = 0  # records appended so far
        # segments written full, with the number of records appended when each was closed
        self._retired: list[tuple[int, Path, int]] = []
        self._fd, self._path = self._open()
        self._size = 0

    def append(self, values: tuple[object, ...]) -> None:
        """Hand one record to the kernel; it survives the process from here on."""
        line = orjson.dumps(values, option=orjson.OPT_APPEND_NEWLINE)  # read by json
        with self._lock:
            if self._size + len(line) > self._segment_bytes and self._size:
                self._retired.append((self._fd, self._path, self._appended))
                self._fd, self._path = self._open()
                self._size = 0
            os.write(self._fd, line)  # one call with O_APPEND: records never interleave
            self._size += len(line)
            self._appended += 1

    def committed(self, n: int) -> None:
        """The first ``n`` records appended are in the database: drop full segments."""
        with self._lock:
            while self._retired and self._retired[0][2] <= n:
                fd, path, _ = self._retired.pop(0)
                path.unlink(missing_ok=True)
                os.close(fd)

    def close(self, n_committed: int) -> None:
        """Release the journal; segments with uncommitted records stay for replay."""
        self.committed(n_committed)
        with self._lock:
            if n_committed >= self._appended:
                self._path.unlink(missing_ok=True)
            for fd, _, _ in self._retired:
                os.close(fd)
            os.close(self._fd)
            self._retired.clear()

    def _open(self) -> tuple[int, Path]:
        # Locked under a temporary name, so no other process takes it for an orphan.
        self._n_segments += 1
        tmp = self.folder / f"{self._name}-{self._n_segments:06d}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = tmp.with_suffix(_SUFFIX)
        tmp.rename(path)
        return fd, path


def orphans(folder: Path) -> Iterator[list[tuple[object, ...]]]:
    """The records of each segment left by a dead process, one segment at a time; a
    segment is deleted once the consumer asks for the next (or the loop ends)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*" + _SUFFIX)):  # one process's segments in order
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # another process replayed it meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive
                continue
            if os.fstat(fd).st_nlink == 0:  # replayed and deleted by another process
                continue
            with os.fdopen(os.dup(fd), "rb") as f:
                records = _parse(f.read(), path)
            yield records
            path.unlink(missing_ok=True)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)


def _parse(data: bytes, path: Path) -> list[tuple[object, ...]]:
    records: list[tuple[object, ...]] = []
    lines = data.split(b"\n")
    # the last piece is empty, or a record cut short by a power cut (never acknowledged)
    bad = 0
    for line in lines[:-1]:
        try:
            values = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(values, list):
            records.append(tuple(values))
        else:
            bad += 1
    if bad:
        log.error("audit journal %s: %d unreadable records skipped", path.name, bad)
    return records
