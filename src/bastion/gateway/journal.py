"""The audit journal: a local append-only file that makes an audit record safe against
``kill -9`` before the database has it (``audit_ack = "journal"``).

Each record is one JSON line, written with a single ``write`` to a file opened with
``O_APPEND``: once that call returns the record is in the kernel's page cache, which
outlives the process (not a power cut: that needs an fsync, which ``audit_ack =
"commit"`` with ``sqlite_synchronous = FULL`` or PostgreSQL pays for). The audit
committer reads the records back with a :class:`Tail` (from a process of its own, see
:mod:`~.audit_committer`), commits them to the database in batches, and the journal
drops the segments it has made durable.

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

__all__ = ["Journal", "Tail", "journal_folder", "orphans"]

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
        # segments written full, with their number and the records appended when each
        # was closed; and the records in the segments dropped so far
        self._retired: list[tuple[int, int, Path, int]] = []
        self._dropped = 0
        self._fd, self._path = self._open()
        self._size = 0

    @property
    def name(self) -> str:
        """What this journal's segments are named after (see :class:`Tail`)."""
        return self._name

    @property
    def appended(self) -> int:
        """Records appended so far."""
        return self._appended

    def kept(self) -> tuple[int, int]:
        """Where a :class:`Tail` reading what is kept starts: the first kept segment's
        number and the records appended before it."""
        with self._lock:
            return (self._retired[0][1] if self._retired else self._n_segments), self._dropped

    def append(self, values: tuple[object, ...]) -> None:
        """Hand one record to the kernel; it survives the process from here on."""
        line = orjson.dumps(values, option=orjson.OPT_APPEND_NEWLINE)  # read by json
        with self._lock:
            if self._size + len(line) > self._segment_bytes and self._size:
                self._retired.append(
                    (self._fd, self._n_segments, self._path, self._appended))
                self._fd, self._path = self._open()
                self._size = 0
            os.write(self._fd, line)  # one call with O_APPEND: records never interleave
            self._size += len(line)
            self._appended += 1

    def committed(self, n: int) -> None:
        """The first ``n`` records appended are in the database: drop full segments."""
        with self._lock:
            while self._retired and self._retired[0][3] <= n:
                fd, _, path, self._dropped = self._retired.pop(0)
                path.unlink(missing_ok=True)
                os.close(fd)

    def close(self, n_committed: int) -> None:
        """Release the journal; segments with uncommitted records stay for replay."""
        self.committed(n_committed)
        with self._lock:
            if n_committed >= self._appended:
                self._path.unlink(missing_ok=True)
            for fd, *_ in self._retired:
                os.close(fd)
            os.close(self._fd)
            self._retired.clear()

    def _open(self) -> tuple[int, Path]:
        # Locked under a temporary name, so no other process takes it for an orphan.
        self._n_segments += 1
        path = segment_path(self.folder, self._name, self._n_segments)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        tmp.rename(path)
        return fd, path


def segment_path(folder: Path, name: str, number: int) -> Path:
    return folder / f"{name}-{number:06d}{_SUFFIX}"


class Tail:
    """Reads one journal's records in order, as its process appends them.

    Starts at segment ``segment`` with ``position`` records before it (see
    :meth:`Journal.kept`). A segment is read to its end before the next one is opened,
    and it is final once the next one exists: its process moves on only after its last
    write there has returned. :attr:`position` counts the records read so far from the
    journal's start, the number :meth:`Journal.committed` takes.
    """

    def __init__(self, folder: Path, name: str, *, segment: int = 1, position: int = 0) -> None:
        self._folder = folder
        self._name = name
        self._segment = segment
        self.position = position
        self._fd: int | None = None
        self._rest = b""  # a record whose end is not written yet

    def read(self) -> list[tuple[object, ...]]:
        """The records appended since the last call (all of them: at most what gathers
        while the database refuses, which the gateway bounds)."""
        data = self._rest
        while True:
            if self._fd is None:
                path = segment_path(self._folder, self._name, self._segment)
                try:
                    self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:  # not there yet, or the journal was closed
                    break
            data += _read_to_end(self._fd)
            if not segment_path(self._folder, self._name, self._segment + 1).exists():
                break
            data += _read_to_end(self._fd)  # what was written before the next one opened
            os.close(self._fd)
            self._fd, self._segment = None, self._segment + 1
            if data and not data.endswith(b"\n"):  # cut by a power cut: never acknowledged
                data = data[:data.rfind(b"\n") + 1]
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        self.position += data.count(b"\n", 0, cut)
        return _parse(data[:cut], f"{self._name} (live)")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


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
                records = _parse(f.read(), path.name)
            yield records
            path.unlink(missing_ok=True)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)


def _parse(data: bytes, source: str) -> list[tuple[object, ...]]:
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
        log.error("audit journal %s: %d unreadable records skipped", source, bad)
    return records
