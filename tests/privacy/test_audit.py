"""Audits of files with known ground truth: counts, locations, column classes, masking."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bastion.errors import InvalidDataError, UnsupportedFormatError
from bastion.privacy.audit import audit

ROWS = [
    ("1", "John Smith", "j.smith@example.com", "123-45-6788", "BP 120/80; HR 72"),
    ("2", "Mary Jones", "mjones@example.org", "536-22-5384", "call (212) 736-5000"),
    ("3", "Linda Brown", "lb@example.net", "078-12-3456", "version 2.3.1"),
]
RAW = [v for row in ROWS for v in row[1:4]] + ["(212) 736-5000"]


def _csv(path: Path, extra: str = "") -> Path:
    lines = ["id,name,email,ssn,notes", *(",".join(r) for r in ROWS)]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def test_csv_counts_locations_and_columns(tmp_path: Path) -> None:
    result = audit(_csv(tmp_path / "t.csv"))
    assert result.counts() == {"PERSON": 3, "EMAIL_ADDRESS": 3, "US_SSN": 3, "PHONE_NUMBER": 1}
    phone = next(h for h in result.hits if h.entity == "PHONE_NUMBER")
    assert (phone.record, phone.field, phone.start, phone.end) == ("3", "notes", 5, 19)
    classes = {c.column: c.entity for c in result.columns}
    # "notes" mentions a phone number in one cell; it is free text, not a phone column.
    assert classes == {"id": None, "name": "PERSON", "email": "EMAIL_ADDRESS",
                       "ssn": "US_SSN", "notes": None}  # fmt: skip
    assert next(c for c in result.columns if c.column == "ssn").confidence == 1.0


def test_no_raw_value_reaches_findings(tmp_path: Path) -> None:
    findings = audit(_csv(tmp_path / "t.csv")).findings()
    dumped = json.dumps([f.model_dump(mode="json") for f in findings])
    for raw in RAW:
        assert raw not in dumped
    ssn = next(f for f in findings if f.id == "pii/us-ssn")
    assert ssn.evidence["examples_masked"][0] == "***-**-****"
    assert "HIPAA:ssn" in ssn.evidence["categories"]


def test_malformed_csv_rows_are_reported_and_the_rest_read(tmp_path: Path) -> None:
    result = audit(_csv(tmp_path / "t.csv", extra="4,only,three\n5,Ann Lee,al@example.net,x,y\n"))
    assert result.malformed == [5]
    assert result.n_records == 4
    assert any(f.id == "pii/malformed-rows" for f in result.findings())


def test_jsonl_uses_text_and_id_fields(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    rows = [{"uid": "a1", "body": "SSN 123-45-6788"}, {"uid": "b2", "body": "BP 130/85"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    result = audit(path, text_field="body", id_field="uid")
    assert [(h.record, h.entity, h.start, h.end) for h in result.hits] == [("a1", "US_SSN", 4, 15)]
    assert result.malformed == [3]


def test_parquet_and_text_match_csv(tmp_path: Path) -> None:
    table = pa.table({"name": [r[1] for r in ROWS], "email": [r[2] for r in ROWS]})
    pq.write_table(table, tmp_path / "t.parquet")
    assert audit(tmp_path / "t.parquet").counts() == {"PERSON": 3, "EMAIL_ADDRESS": 3}
    (tmp_path / "t.txt").write_text("Seen John Smith.\nEmail j.smith@example.com\n")
    hits = audit(tmp_path / "t.txt").hits
    assert [(h.record, h.entity) for h in hits] == [("1", "PERSON"), ("2", "EMAIL_ADDRESS")]


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("blob.txt", b"\x7fELF\x00\x01\x02", UnsupportedFormatError),
        ("latin.txt", "café résumé".encode("latin-1"), InvalidDataError),
        ("fake.parquet", b"not parquet at all", UnsupportedFormatError),
    ],
)
def test_bad_input_raises_one_line_error(
    tmp_path: Path, name: str, payload: bytes, error: type[Exception]
) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(error) as info:
        audit(path)
    assert "\n" not in str(info.value)


def test_entities_restrict_and_opt_in_adds(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("ssn 123-45-6788 user 123e4567-e89b-12d3-a456-426614174000\n")
    assert audit(path).counts() == {"US_SSN": 1}
    assert audit(path, opt_in=["UUID"]).counts() == {"US_SSN": 1, "UUID": 1}
    assert audit(path, entities=["UUID"]).counts() == {"UUID": 1}


def test_unknown_entity_type_is_a_config_error(tmp_path: Path) -> None:
    from bastion.errors import ConfigError

    path = tmp_path / "log.txt"
    path.write_text("x\n")
    with pytest.raises(ConfigError, match="unknown entity type 'SSN'"):
        audit(path, entities=["SSN"])


def test_a_classified_column_is_a_finding_without_conclusive_cells(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("zip,age,count\n62704,34,3\n62701,45,4\n10001,51,5\n")
    result = audit(path)
    assert result.hits == []  # a bare five-digit number is no ZIP code on its own
    (finding,) = result.findings()  # an "age" column with no age over 89 is no finding
    assert finding.id == "pii/zip-code"
    assert finding.title == "column zip of t.csv holds ZIP_CODE"
    assert finding.evidence["columns_classified"] == {"zip": 0.6}
