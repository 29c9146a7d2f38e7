"""Anonymize a text, JSONL, CSV or Parquet file: every detected identifier is redacted, masked,
pseudonymized (HMAC-SHA256), generalized, or its column dropped.

Nothing else changes: the input is only read, the output is written to a temporary file
beside ``out`` and renamed over it at the end (so a failure leaves no partial file), and
row count, column order and every value without PII are copied byte for byte. Afterwards
the k-anonymity and l-diversity of the quasi-identifier columns are measured on the output.

The pseudonymization key comes from an environment variable or a file and is never
logged, stored or echoed; the same key and value always give the same token.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bastion.errors import ConfigError, InvalidDataError, UnreadableInputError
from bastion.privacy._records import open_source
from bastion.privacy.audit import ColumnClass, classify_columns, whole_cell_entities
from bastion.privacy.pii import Detection, analyze, mask
from bastion.progress import ProgressSink, emit

__all__ = ["PRESETS", "AnonymizeConfig", "AnonymizeResult", "anonymize", "generalize"]

Operator = Literal["redact", "mask", "pseudonymize", "generalize", "keep"]
OPERATORS: tuple[str, ...] = ("redact", "mask", "pseudonymize", "generalize", "keep")

# HHS Safe Harbor guidance: 3-digit ZIP prefixes whose area held 20,000 people or fewer
# (2000 Census) must become 000.
SAFE_HARBOR_ZIP3_TO_ZERO = frozenset(
    {"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831",
     "878", "879", "884", "890", "893"}
)  # fmt: skip


class AnonymizeConfig(BaseModel):
    """What to do with each entity type and column; loaded from ``--config`` (JSON).

    Naming an opt-in entity type (``UUID``) in ``entities`` also switches its detection on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Operator = "redact"
    entities: dict[str, Operator] = Field(default_factory=dict)
    columns: dict[str, Operator | Literal["drop"]] = Field(default_factory=dict)
    mask_keep: int = Field(default=4, ge=0)
    key_env: str = "BASTION_PII_KEY"
    key_file: Path | None = None
    quasi_identifiers: list[str] | None = None
    sensitive: str | None = None
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    column_confidence: float = Field(default=0.5, gt=0.0, le=1.0)

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, Operator]) -> dict[str, Operator]:
        from bastion.privacy.pii import entity_types

        unknown = sorted(set(value) - set(entity_types()))
        if unknown:
            raise ValueError(f"unknown entity type {unknown[0]!r}")
        return value

    def operator(self, entity: str) -> Operator:
        return self.entities.get(entity, self.default)

    def needs_key(self) -> bool:
        ops = [self.default, *self.entities.values(), *self.columns.values()]
        return "pseudonymize" in ops


_GENERALIZED = {"DATE_TIME": "generalize", "ZIP_CODE": "generalize", "AGE_OVER_89": "generalize"}

PRESETS: dict[str, AnonymizeConfig] = {
    # The 18 Safe Harbor identifiers removed; dates kept as years, ZIPs as 3 digits,
    # ages of 90 and over pooled.
    "hipaa-safe-harbor": AnonymizeConfig(default="redact", entities=dict(_GENERALIZED)),
    # GDPR Art. 4(5): identifiers replaced by keyed tokens that only the key holder can
    # link back; dates reduced to years.
    "gdpr-pseudonymize": AnonymizeConfig(
        default="pseudonymize", entities={"DATE_TIME": "generalize"}
    ),
}


def load_config(preset: str | None, path: Path | None) -> AnonymizeConfig:
    """A preset, a JSON config file, or the preset overridden by the file's keys."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; use one of {', '.join(sorted(PRESETS))}")
    base = PRESETS[preset] if preset else AnonymizeConfig()
    if path is None:
        return base
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"config file {path} is not valid JSON") from None
    try:
        return AnonymizeConfig.model_validate({**base.model_dump(), **data})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"config {path}: {where}: {first['msg']} (operators: {', '.join(OPERATORS)}, drop)"
        ) from None


def _key(config: AnonymizeConfig) -> bytes:
    if config.key_file is not None:
        try:
            key = config.key_file.read_bytes().strip()
        except OSError:
            raise ConfigError(
                f"pseudonymization key file {config.key_file} cannot be read"
            ) from None
    else:
        key = os.environ.get(config.key_env, "").encode()
    if len(key) < 16:
        raise ConfigError(
            f"pseudonymization needs a key of 16+ bytes: set {config.key_env} or pass --key-file"
        )
    return key


def generalize(entity: str, value: str) -> str:
    """Dates → year, ZIP → first 3 digits (000 for small areas), UK postcode → its
    outward code, Canadian postal code → its forward sortation area, age ≥ 90 → "90+"."""
    if entity == "DATE_TIME":
        year = re.search(r"(?<!\d)(?:19|20)\d{2}(?!\d)", value)
        return year.group(0) if year else "[DATE]"
    if entity == "ZIP_CODE":
        compact = value.replace(" ", "").upper()
        if not compact[:1].isdigit():  # UK or Canadian: drop the last three (inward) places
            return compact[:-3]
        zip3 = value[:3]
        return "000" if zip3 in SAFE_HARBOR_ZIP3_TO_ZERO else zip3
    if entity == "AGE_OVER_89":
        digits = value.strip()
        if digits.isdigit() and int(digits) < 90:
            return value
        return "90+"
    return f"[{entity}]"


@dataclass(kw_only=True)
class AnonymizeResult:
    """What was changed, where, and how identifiable the output still is."""

    out: Path
    n_records: int = 0
    replaced: Counter[str] = field(default_factory=Counter)
    malformed: list[int] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    quasi_identifiers: list[str] = field(default_factory=list)
    k_anonymity: int | None = None
    l_diversity: int | None = None


@dataclass(kw_only=True)
class _Groups:
    """Equivalence classes of the output's quasi-identifier values: k-anonymity is the
    smallest class, l-diversity the fewest distinct sensitive values in any class."""

    columns: list[str]
    sensitive: str | None
    sizes: Counter[tuple[str, ...]] = field(default_factory=Counter)
    values: dict[tuple[str, ...], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, row: Mapping[str, object]) -> None:
        if not self.columns:
            return
        group = tuple(str(row.get(c)) for c in self.columns)
        self.sizes[group] += 1
        if self.sensitive is not None:
            self.values[group].add(str(row.get(self.sensitive)))

    def store(self, result: AnonymizeResult) -> None:
        result.quasi_identifiers = list(self.columns)
        if self.sizes:
            result.k_anonymity = min(self.sizes.values())
            if self.sensitive is not None:
                result.l_diversity = min(len(v) for v in self.values.values())


def _groups(
    config: AnonymizeConfig, header: list[str], dropped: set[str], classes: dict[str, ColumnClass]
) -> _Groups:
    """The quasi-identifiers the config names (each must be an output column), else the
    columns classified as dates, ZIP codes or ages."""
    kept = [h for h in header if h not in dropped]
    named = [*(config.quasi_identifiers or []), *([config.sensitive] if config.sensitive else [])]
    missing = [c for c in named if c not in kept]
    if missing:
        raise ConfigError(
            f"quasi-identifier or sensitive column not in the output: {', '.join(missing)}"
        )
    qi = config.quasi_identifiers or [
        c.column for c in classes.values()
        if c.entity in _GENERALIZED and c.confidence >= config.column_confidence
        and c.column in kept
    ]  # fmt: skip
    return _Groups(columns=qi, sensitive=config.sensitive)


@dataclass(frozen=True, kw_only=True)
class _Replacer:
    config: AnonymizeConfig
    key: bytes | None
    progress: ProgressSink | None = None

    def tick(self, n_records: int) -> None:
        if n_records % 1000 == 0:
            emit(self.progress, "pii-anonymize", n_records)

    def value(self, entity: str, raw: str, op: str | None = None) -> str:
        match op or self.config.operator(entity):
            case "redact":
                return f"[{entity}]"
            case "mask":
                return mask(raw, keep=self.config.mask_keep)
            case "pseudonymize":
                assert self.key is not None  # load-time check: needs_key() → _key()
                digest = hmac.new(self.key, raw.encode("utf-8"), hashlib.sha256).hexdigest()
                return f"{entity}_{digest[:16]}"
            case "generalize":
                return generalize(entity, raw)
            case _:
                return raw

    def text(self, text: str, counter: Counter[str]) -> str:
        found = analyze(text, threshold=self.config.threshold, opt_in=self.config.entities)
        return self.spans(text, found, counter)

    def spans(self, text: str, found: list[Detection], counter: Counter[str]) -> str:
        out = text
        for d in sorted(found, key=lambda d: d.start, reverse=True):
            new = self.value(d.entity, text[d.start : d.end])
            if new != text[d.start : d.end]:
                counter[d.entity] += 1
            out = out[: d.start] + new + out[d.end :]
        return out


def anonymize(
    path: Path,
    out: Path,
    config: AnonymizeConfig,
    *,
    kind: str | None = None,
    text_field: str = "text",
    encoding: str = "utf-8",
    progress: ProgressSink | None = None,
) -> AnonymizeResult:
    """Write an anonymized copy of ``path`` to ``out`` (atomically); never touch ``path``.

    k-anonymity and l-diversity are measured on the output for CSV and Parquet (named or
    classified quasi-identifier columns) and for JSONL (named fields only).
    """
    source = open_source(path, kind=kind, text_field=text_field, encoding=encoding)
    if out.resolve() == path.resolve():
        raise ConfigError("--out must differ from the input; the input is never modified")
    key = _key(config) if config.needs_key() else None
    replacer = _Replacer(config=config, key=key, progress=progress)
    result = AnonymizeResult(out=out)
    writers: dict[str, Callable[[Path], None]] = {
        "text": _as_text(lambda fh: _text(source.path, encoding, fh, replacer, result)),
        "jsonl": _as_text(
            lambda fh: _jsonl(source.path, encoding, text_field, fh, replacer, result)
        ),
        "csv": _as_text(lambda fh: _csv(source.path, encoding, fh, replacer, result)),
        "parquet": lambda tmp: _parquet(source.path, tmp, replacer, result),
    }
    _atomic(out, writers[source.kind])
    emit(progress, "pii-anonymize", result.n_records, result.n_records)
    return result


def _atomic(out: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary file in ``out``'s folder, then rename it into place."""
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UnreadableInputError(f"folder {folder} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _as_text(write: Callable[[io.TextIOBase], None]) -> Callable[[Path], None]:
    def run(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            write(handle)

    return run


def _lines(path: Path, encoding: str) -> Iterable[str]:
    try:
        with path.open(encoding=encoding, newline="") as handle:
            yield from handle
    except UnicodeDecodeError as exc:
        raise InvalidDataError(
            f"{path} is not valid {encoding} (byte {exc.start}); pass --encoding, e.g. latin-1"
        ) from None


def _text(
    path: Path, encoding: str, fh: io.TextIOBase, rep: _Replacer, result: AnonymizeResult
) -> None:
    for line in _lines(path, encoding):
        body = line.rstrip("\r\n")
        fh.write(rep.text(body, result.replaced) + line[len(body) :])
        result.n_records += 1
        rep.tick(result.n_records)


def _jsonl(
    path: Path,
    encoding: str,
    text_field: str,
    fh: io.TextIOBase,
    rep: _Replacer,
    result: AnonymizeResult,
) -> None:
    classes = _classify_jsonl(path, encoding)
    dropped = {c for c, op in rep.config.columns.items() if op == "drop"}
    result.dropped_columns = sorted(dropped)
    groups = _Groups(columns=rep.config.quasi_identifiers or [], sensitive=rep.config.sensitive)
    for number, line in enumerate(_lines(path, encoding), start=1):
        result.n_records += 1
        rep.tick(result.n_records)
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            if line.strip():
                result.malformed.append(number)
            fh.write(
                line if not line.strip() else rep.text(line.rstrip("\n"), result.replaced) + "\n"
            )
            continue
        row = {
            k: _json(v, classes.get(k), rep, result.replaced)
            for k, v in row.items()
            if k not in dropped
        }
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        groups.add(row)
    groups.store(result)


def _classify_jsonl(path: Path, encoding: str, n: int = 200) -> dict[str, ColumnClass]:
    """Top-level fields classified like table columns, from the first ``n`` objects."""
    rows: list[dict[str, object]] = []
    for line in _lines(path, encoding):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
        if len(rows) == n:
            break
    header = list(dict.fromkeys(k for row in rows for k in row))
    return _classify_rows(header, ([_scalar_text(row.get(k)) for k in header] for row in rows))


def _scalar_text(value: object) -> str:
    """A string or number as text; anything else (null, bool, list, object) as ""."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value)


def _json(
    value: object, field: ColumnClass | None, rep: _Replacer, counter: Counter[str]
) -> object:
    """A JSON value with its identifiers replaced: strings are scanned (and replaced whole
    when the field holds identifiers), numbers in such a field become the replacement
    text, and lists and objects are walked."""
    if isinstance(value, str):
        return _cell(value, field, rep, counter)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return _cell(str(value), field, rep, counter) if _holds_identifiers(field, rep) else value
    if isinstance(value, list):
        return [_json(v, None, rep, counter) for v in value]
    if isinstance(value, dict):
        return {k: _json(v, None, rep, counter) for k, v in value.items()}
    return value


def _csv(
    path: Path, encoding: str, fh: io.TextIOBase, rep: _Replacer, result: AnonymizeResult
) -> None:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    # Pass 1 classifies columns from a sample, so whole-cell identifiers (a name the
    # dictionary misses, in a column of names) are caught too.
    classes = _classify(path, encoding, delimiter)
    config = rep.config
    reader = csv.reader(_lines(path, encoding), delimiter=delimiter)
    writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
    header = next(reader)
    dropped = {c for c, op in config.columns.items() if op == "drop"}
    unknown = set(config.columns) - set(header)
    if unknown:
        raise ConfigError(f"config names columns not in the file: {', '.join(sorted(unknown))}")
    keep = [i for i, name in enumerate(header) if name not in dropped]
    result.dropped_columns = [header[i] for i in range(len(header)) if i not in keep]
    groups = _groups(config, header, dropped, classes)
    writer.writerow([header[i] for i in keep])
    for row in reader:
        result.n_records += 1
        rep.tick(result.n_records)
        if len(row) != len(header):
            # Reported by line number; its fields are still scrubbed as free text so
            # the row count holds and nothing leaks through a broken row.
            result.malformed.append(reader.line_num)
            writer.writerow([rep.text(v, result.replaced) for v in row])
            continue
        cells = {
            header[i]: _cell(row[i], classes.get(header[i]), rep, result.replaced) for i in keep
        }
        writer.writerow([cells[header[i]] for i in keep])
        groups.add(cells)
    groups.store(result)


def _cell(value: str, column: ColumnClass | None, rep: _Replacer, counter: Counter[str]) -> str:
    """Detections inside the cell first; else the column's class, if sure enough."""
    if not value:
        return value
    if column is not None:
        op = rep.config.columns.get(column.column)
        if op is not None and op != "drop":
            entity = column.entity or "COLUMN"
            new = rep.value(entity, value, op)
            if new != value:
                counter[entity] += 1
            return new
    found = analyze(value, threshold=rep.config.threshold, opt_in=rep.config.entities)
    if found:
        return rep.spans(value, found, counter)
    if column is not None and column.entity and column.confidence >= rep.config.column_confidence:
        new = rep.value(column.entity, value)
        if new != value:
            counter[column.entity] += 1
        return new
    return value


def _classify(path: Path, encoding: str, delimiter: str, n: int = 200) -> dict[str, ColumnClass]:
    """Column classes from the first ``n`` well-formed rows."""
    reader = csv.reader(_lines(path, encoding), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise ConfigError(f"{path} is empty; give a CSV file with a header row")
    rows = (row for row in reader if len(row) == len(header))
    return _classify_rows(header, (row for _, row in zip(range(n), rows, strict=False)))


def _classify_rows(header: list[str], rows: Iterable[list[str]]) -> dict[str, ColumnClass]:
    sampled: dict[str, Counter[str]] = defaultdict(Counter)
    n_sampled: Counter[str] = Counter()
    for row in rows:
        for name, value in zip(header, row, strict=True):
            if value:
                n_sampled[name] += 1
                for entity in whole_cell_entities(value, analyze(value)):
                    sampled[name][entity] += 1
    return {c.column: c for c in classify_columns(header, sampled, n_sampled)}


def _holds_identifiers(column: ColumnClass | None, rep: _Replacer) -> bool:
    """Whether the config or a confident column class sends this column's cells to an
    operator other than ``keep``."""
    if column is None:
        return False
    op = rep.config.columns.get(column.column)
    if op is not None:
        return op not in ("keep", "drop")
    if column.entity is None or column.confidence < rep.config.column_confidence:
        return False
    return rep.config.operator(column.entity) != "keep"


def _parquet(path: Path, tmp: Path, rep: _Replacer, result: AnonymizeResult) -> None:
    """String columns are anonymized cell by cell. A column of another type (a date, an
    integer) that holds identifiers, by its class or by the config, is written as text
    and anonymized the same way: a ``date32`` birth date becomes ``"1951"``, an integer SSN
    ``"[US_SSN]"``. Every other column is copied with its type; column order, row order
    and nulls are preserved."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    schema = handle.schema_arrow
    header = list(schema.names)
    dropped = {c for c, op in rep.config.columns.items() if op == "drop"}
    unknown = set(rep.config.columns) - set(header)
    if unknown:
        raise ConfigError(f"config names columns not in the file: {', '.join(sorted(unknown))}")
    keep = [name for name in header if name not in dropped]
    result.dropped_columns = [name for name in header if name in dropped]
    texts = {
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    }
    first = next(handle.iter_batches(batch_size=200), None)
    sample = first.to_pylist() if first is not None else []
    classes = _classify_rows(
        header, ([("" if r[h] is None else str(r[h])) for h in header] for r in sample)
    )
    recast = {
        name for name in keep if name not in texts and _holds_identifiers(classes.get(name), rep)
    }
    groups = _groups(rep.config, header, dropped, classes)
    measured = [*groups.columns, *([groups.sensitive] if groups.sensitive else [])]
    out_schema = pa.schema(
        [pa.field(n, pa.string()) if n in recast else schema.field(n) for n in keep]
    )
    with pq.ParquetWriter(tmp, out_schema) as writer:
        for batch in handle.iter_batches(batch_size=4096):
            result.n_records += batch.num_rows
            emit(rep.progress, "pii-anonymize", result.n_records)
            columns = []
            for name in keep:
                column = batch.column(name)
                if name in texts or name in recast:
                    values = [
                        None
                        if v is None
                        else _cell(str(v), classes.get(name), rep, result.replaced)
                        for v in column.to_pylist()
                    ]
                    column = pa.array(values, type=out_schema.field(name).type)
                columns.append(column)
            writer.write_batch(pa.record_batch(columns, schema=out_schema))
            lists = {n: c.to_pylist() for n, c in zip(keep, columns, strict=True) if n in measured}
            for i in range(batch.num_rows):
                groups.add({n: values[i] for n, values in lists.items()})
    groups.store(result)
