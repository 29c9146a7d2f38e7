"""Stream text, JSONL, CSV and Parquet files as cells, a chunk at a time.

Every reader yields :class:`Cell` objects (record id, field, text) without holding the
file in memory, so a file larger than memory can be audited. A CSV row whose field count
does not match the header is not guessed at: its line number goes to ``malformed`` and the
rest of the file is read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import (
    InputNotFoundError,
    InvalidDataError,
    UnreadableInputError,
    UnsupportedFormatError,
)

__all__ = ["Cell", "Source", "detect_kind", "open_source"]

TEXT_SUFFIXES = {".txt", ".text", ".log", ".md", ".note", ".notes"}
KINDS = ("text", "jsonl", "csv", "parquet")


@dataclass(frozen=True, slots=True)
class Cell:
    """One piece of text to scan: ``record`` (row number or id), ``field`` (column)."""

    record: str
    field: str
    text: str


@dataclass(kw_only=True)
class Source:
    """An opened input: its kind, its columns (tables), and rows skipped as malformed."""

    path: Path
    kind: str
    encoding: str = "utf-8"
    text_field: str = "text"
    id_field: str | None = None
    columns: list[str] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)

    def cells(self) -> Iterator[Cell]:
        """Every cell of the input, in file order."""
        match self.kind:
            case "text":
                return self._text()
            case "jsonl":
                return self._jsonl()
            case "csv":
                return self._csv()
            case _:
                return self._parquet()

    def _open(self) -> Iterator[str]:
        try:
            with self.path.open(encoding=self.encoding, newline="") as handle:
                yield from handle
        except UnicodeDecodeError as exc:
            raise InvalidDataError(
                f"{self.path} is not valid {self.encoding} (byte {exc.start}); "
                "pass --encoding, e.g. --encoding latin-1"
            ) from None

    def _text(self) -> Iterator[Cell]:
        for number, line in enumerate(self._open(), start=1):
            if "\x00" in line:
                raise UnsupportedFormatError(
                    f"{self.path} looks binary (NUL byte on line {number}); give a text file"
                )
            yield Cell(str(number), "text", line.rstrip("\r\n"))

    def _jsonl(self) -> Iterator[Cell]:
        for number, line in enumerate(self._open(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                self.malformed.append(number)
                continue
            if not isinstance(row, dict) or not isinstance(row.get(self.text_field), str):
                self.malformed.append(number)
                continue
            record = str(row.get(self.id_field, number)) if self.id_field else str(number)
            yield Cell(record, self.text_field, row[self.text_field])

    def _csv(self) -> Iterator[Cell]:
        lines = self._open()
        reader = csv.reader(lines, delimiter="\t" if self.path.suffix.lower() == ".tsv" else ",")
        header = next(reader, None)
        if header is None:
            raise InvalidDataError(f"{self.path} is empty; give a CSV file with a header row")
        self.columns = header
        for row in reader:
            if len(row) != len(header):
                self.malformed.append(reader.line_num)
                continue
            record = str(reader.line_num)
            for name, value in zip(header, row, strict=True):
                yield Cell(record, name, value)

    def _parquet(self) -> Iterator[Cell]:
        import pyarrow.parquet as pq

        try:
            handle = pq.ParquetFile(self.path)
        except Exception:  # pyarrow raises several types for a non-Parquet file
            raise UnsupportedFormatError(f"{self.path} is not a Parquet file") from None
        self.columns = list(handle.schema_arrow.names)
        row = 0
        for batch in handle.iter_batches(batch_size=4096):
            columns = [batch.column(name).to_pylist() for name in self.columns]
            for i in range(batch.num_rows):
                for name, values in zip(self.columns, columns, strict=True):
                    value = values[i]
                    yield Cell(str(row + i), name, "" if value is None else str(value))
            row += batch.num_rows


def detect_kind(path: Path) -> str:
    """The input kind from the suffix; anything unknown is read as plain text."""
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    return "text"


def open_source(
    path: Path,
    *,
    kind: str | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    encoding: str = "utf-8",
) -> Source:
    """Check that ``path`` can be read as ``kind`` (guessed from the suffix if None)."""
    if not path.exists():
        raise InputNotFoundError(f"{path} does not exist; check the path")
    if not path.is_file():
        raise UnreadableInputError(f"{path} is not a regular file; give a file")
    chosen = kind or detect_kind(path)
    if chosen not in KINDS:
        raise UnsupportedFormatError(
            f"unknown input kind {chosen!r}; use one of {', '.join(KINDS)}"
        )
    try:
        "".encode(encoding)
    except LookupError:
        raise UnsupportedFormatError(
            f"unknown encoding {encoding!r}; try utf-8 or latin-1"
        ) from None
    if chosen != "parquet":
        with path.open("rb") as handle:
            head = handle.read(8192)
        if b"\x00" in head and not encoding.lower().startswith("utf-16"):
            raise UnsupportedFormatError(f"{path} looks binary, not {chosen}; give a text file")
    return Source(
        path=path, kind=chosen, encoding=encoding, text_field=text_field, id_field=id_field
    )
