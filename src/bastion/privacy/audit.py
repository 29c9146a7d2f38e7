"""Audit a text, JSONL, CSV or Parquet file for personal data.

Every cell is checked with the registered recognizers; table columns are also classified
(column name + a sample of values, with a confidence). The result keeps positions,
entity types, scores and *masked* examples only: the raw identifier is never stored, so
nothing downstream (report, log, error) can leak it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bastion.errors import ConfigError
from bastion.privacy._records import open_source
from bastion.privacy.pii import RECOGNIZERS, Detection, analyze, entity_types, mask
from bastion.progress import ProgressSink, emit
from bastion.report.finding import Finding, Metric, Severity

__all__ = [
    "AuditResult",
    "ColumnClass",
    "Hit",
    "audit",
    "categories_of",
    "check_entities",
    "classify_columns",
    "name_hint",
    "whole_cell_entities",
]

OWASP = ("ML03", "ML04")
ATLAS = ("AML.T0024.000", "AML.T0024.001", "AML.T0057")

# Identifiers that single a person out on their own (or unlock money or health records).
_DIRECT = {
    "US_SSN", "CREDIT_CARD", "MEDICAL_RECORD_NUMBER", "NATIONAL_ID", "PASSPORT",
    "HEALTH_PLAN_ID", "IBAN_CODE", "BANK_ACCOUNT", "US_DRIVER_LICENSE",
}  # fmt: skip
_CONTACT = {"EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "STREET_ADDRESS"}

# Column-name hints: a column called "dob" holds dates of birth whatever the values say.
_NAME_HINTS: tuple[tuple[str, str], ...] = (
    (r"e-?mail", "EMAIL_ADDRESS"),
    (r"phone|mobile|tel|fax", "PHONE_NUMBER"),
    (r"ssn|social.?sec", "US_SSN"),
    (r"card|ccn|pan", "CREDIT_CARD"),
    (r"iban", "IBAN_CODE"),
    (r"(first|last|full|given|family|sur|patient).?name|^name$", "PERSON"),
    (r"dob|birth|date", "DATE_TIME"),
    (r"zip|postal|postcode", "ZIP_CODE"),
    (r"address|street", "STREET_ADDRESS"),
    (r"city|state|country|town", "LOCATION"),
    (r"mrn|medical.?record", "MEDICAL_RECORD_NUMBER"),
    (r"member|beneficiary|policy|mbi", "HEALTH_PLAN_ID"),
    (r"^ip$|ip.?addr", "IP_ADDRESS"),
    (r"passport", "PASSPORT"),
    (r"licen[cs]e|^dl$", "US_DRIVER_LICENSE"),
    (r"vin$|vehicle", "VIN"),
    (r"imei|device", "IMEI"),
    (r"account|acct", "BANK_ACCOUNT"),
    (r"^age$|_age$|^age_", "AGE_OVER_89"),
)
_HINT_CONFIDENCE = 0.6
#: A column classified with at least this confidence is reported as holding its entity.
COLUMN_CONFIDENCE = 0.5


@dataclass(frozen=True, kw_only=True, slots=True)
class Hit:
    """One detection, located and masked: ``masked`` never holds the raw value."""

    record: str
    field: str
    start: int
    end: int
    entity: str
    score: float
    masked: str


@dataclass(frozen=True, kw_only=True)
class ColumnClass:
    """What a table column holds, how sure we are, and why."""

    column: str
    entity: str | None
    confidence: float
    name_hint: str | None
    value_fraction: float
    n_sampled: int


@dataclass(kw_only=True)
class AuditResult:
    """Everything one audit found, without a single raw identifier."""

    path: Path
    kind: str
    n_records: int = 0
    n_cells: int = 0
    hits: list[Hit] = field(default_factory=list)
    columns: list[ColumnClass] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Detections per entity type, most frequent first."""
        return dict(Counter(h.entity for h in self.hits).most_common())

    def findings(self) -> list[Finding]:
        """One finding per entity type, with columns, categories and masked examples.

        A table column classified as an entity type counts too, even where no single
        cell is conclusive on its own (a column ``zip`` of bare five-digit numbers).
        """
        by_entity: dict[str, list[Hit]] = defaultdict(list)
        for hit in self.hits:
            by_entity[hit.entity].append(hit)
        classified: dict[str, list[ColumnClass]] = defaultdict(list)
        for column in self.columns:
            # A column named "age" says its values are ages, not that any is over 89:
            # only the cells that are (cell hits above) identify someone.
            entity = column.entity
            if entity is None or entity == "AGE_OVER_89" or column.confidence < COLUMN_CONFIDENCE:
                continue
            classified[entity].append(column)
        out = [
            self._finding(entity, by_entity.get(entity, []), classified.get(entity, []))
            for entity in sorted(set(by_entity) | set(classified))
        ]
        if self.malformed:
            out.append(
                Finding(
                    id="pii/malformed-rows",
                    check="pii",
                    title=f"{len(self.malformed)} malformed rows were skipped",
                    severity=Severity.LOW,
                    description="These rows could not be parsed and were not scanned.",
                    evidence={"lines": self.malformed[:1000]},
                    recommendation="Fix the rows at these line numbers and audit again.",
                    location=str(self.path),
                )
            )
        return out

    def _finding(self, entity: str, hits: list[Hit], columns: list[ColumnClass]) -> Finding:
        per_field = Counter(h.field for h in hits)
        names = ", ".join(c.column for c in columns)
        title = f"{len(hits)} {entity} found in {self.path.name}" if hits else (
            f"column {names} of {self.path.name} holds {entity}"
        )  # fmt: skip
        examples = list(dict.fromkeys(h.masked for h in hits))[:3]
        severity = (
            Severity.HIGH
            if entity in _DIRECT
            else Severity.MEDIUM
            if entity in _CONTACT
            else Severity.LOW
        )
        cats = categories_of(entity)
        return Finding(
            id=f"pii/{entity.lower().replace('_', '-')}",
            check="pii",
            title=title,
            severity=severity,
            description=(
                f"{entity} values appear in {len(per_field)} field(s) of {self.n_records} "
                f"records{f'; column(s) classified {entity}: {names}' if columns else ''}; "
                f"regulation categories: {', '.join(cats)}."
            ),
            owasp=list(OWASP),
            atlas=list(ATLAS),
            metrics=[
                Metric(name="detections", value=len(hits), unit="count"),
                Metric(
                    name="records_affected",
                    value=len({h.record for h in hits}),
                    unit="count",
                ),
            ],
            evidence={
                "entity": entity,
                "categories": cats,
                "fields": dict(per_field.most_common()),
                "columns_classified": {c.column: c.confidence for c in columns},
                "examples_masked": examples,
                "detections": [
                    {
                        "record": h.record,
                        "field": h.field,
                        "start": h.start,
                        "end": h.end,
                        "entity": h.entity,
                        "score": h.score,
                    }
                    for h in hits
                ],
            },
            recommendation=(
                "Remove or pseudonymize these values before training (bastion privacy anonymize)."
            ),
            location=str(self.path),
        )


def categories_of(entity: str) -> list[str]:
    """The HIPAA / GDPR / CCPA categories the recognizers of ``entity`` declare."""
    cats = {c for _, r in RECOGNIZERS.items() if r.entity == entity for c in r.categories}
    return sorted(cats)


def check_entities(names: Iterable[str]) -> list[str]:
    """``names`` as a list, or a ConfigError naming the first unknown entity type."""
    known = entity_types()
    out = list(names)
    for name in out:
        if name not in known:
            raise ConfigError(f"unknown entity type {name!r}; use one of {', '.join(known)}")
    return out


def _masked(value: str) -> str:
    return mask(value)


def whole_cell_entities(text: str, found: Iterable[Detection]) -> set[str]:
    """Entity types whose detection is (nearly) the whole cell: "212-555-0187" is a phone
    cell, "call 212-555-0187 after 5" is a free-text cell that mentions one. Only the
    former says what the column holds."""
    size = len(text.strip())
    return {d.entity for d in found if d.end - d.start >= 0.8 * size}


def name_hint(column: str) -> str | None:
    low = column.lower()
    return next((entity for rx, entity in _NAME_HINTS if re.search(rx, low)), None)


def classify_columns(
    columns: Iterable[str], sampled: dict[str, Counter[str]], n_sampled: dict[str, int]
) -> list[ColumnClass]:
    """Combine a name hint and the share of sampled cells that are one entity."""
    out = []
    for column in columns:
        counts = sampled.get(column, Counter())
        n = n_sampled.get(column, 0)
        top, top_n = counts.most_common(1)[0] if counts else (None, 0)
        fraction = top_n / n if n else 0.0
        hint = name_hint(column)
        entity: str | None
        if top is not None and (hint is None or hint == top or fraction >= 0.5):
            entity = top
            conf = 1 - (1 - fraction) * (1 - _HINT_CONFIDENCE) if hint == top else fraction
        else:
            entity, conf = hint, (_HINT_CONFIDENCE * (1 - fraction) if hint else 0.0)
        out.append(
            ColumnClass(
                column=column,
                entity=entity,
                confidence=round(conf, 3),
                name_hint=hint,
                value_fraction=round(fraction, 3),
                n_sampled=n,
            )
        )
    return out


def audit(
    path: Path,
    *,
    kind: str | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    encoding: str = "utf-8",
    entities: Iterable[str] | None = None,
    opt_in: Iterable[str] = (),
    threshold: float = 0.5,
    sample_rows: int = 200,
    progress: ProgressSink | None = None,
) -> AuditResult:
    """Scan every cell of ``path``; classify table columns from the first ``sample_rows``.

    ``entities`` restricts the search to those types; ``opt_in`` adds opt-in types
    (``UUID``) to the default set.
    """
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}; 0.5 is the default")
    extra = check_entities(opt_in)
    source = open_source(path, kind=kind, text_field=text_field, id_field=id_field,
                         encoding=encoding)  # fmt: skip
    wanted = check_entities(entities) if entities is not None else None
    recognizers = [r for _, r in RECOGNIZERS.items()]
    result = AuditResult(path=path, kind=source.kind)
    sampled: dict[str, Counter[str]] = defaultdict(Counter)
    n_sampled: Counter[str] = Counter()
    last_record = None
    for cell in source.cells():
        if cell.record != last_record:
            last_record = cell.record
            result.n_records += 1
            if result.n_records % 1000 == 0:
                emit(progress, "pii-audit", result.n_records)
        result.n_cells += 1
        if not cell.text:
            continue
        found = analyze(cell.text, entities=wanted, recognizers=recognizers, threshold=threshold,
                        opt_in=extra)  # fmt: skip
        if source.kind in ("csv", "parquet") and result.n_records <= sample_rows:
            n_sampled[cell.field] += 1
            for entity in whole_cell_entities(cell.text, found):
                sampled[cell.field][entity] += 1
        for d in found:
            result.hits.append(
                Hit(
                    record=cell.record,
                    field=cell.field,
                    start=d.start,
                    end=d.end,
                    entity=d.entity,
                    score=d.score,
                    masked=_masked(cell.text[d.start : d.end]),
                )
            )
    emit(progress, "pii-audit", result.n_records, result.n_records)
    result.malformed = list(source.malformed)
    if source.columns:
        result.columns = classify_columns(source.columns, sampled, n_sampled)
    return result
