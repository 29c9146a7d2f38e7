"""Anonymization on files with known identifiers: nothing detected survives, nothing
else changes, the input is untouched, and failures leave no output behind."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import ConfigError
from bastion.privacy.anonymize import PRESETS, AnonymizeConfig, anonymize, generalize, load_config
from bastion.privacy.audit import audit

CSV = (
    "name,dob,zip,age,diagnosis,notes\n"
    "John Smith,03/14/1951,03601,92,E11.9,call (212) 736-5000\n"
    "Xavi Quorra,1980-02-01,62704,45,I10,ok\n"
    'Mary Jones,1975-06-30,62704,45,I10,"SSN 123-45-6788, BP 120/80"\n'
    "broken,row\n"
    "Linda Brown,1975-01-02,62701,45,J45.909,lab glucose 5.6 mmol/L\n"
)
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(CSV)
    return path


def _raw_identifiers(path: Path) -> set[str]:
    """Every detected identifier string in ``path``, read back from the audit positions."""
    rows = list(csv.reader(path.read_text().splitlines()))
    header = rows[0]
    out = set()
    for hit in audit(path).hits:
        row = rows[int(hit.record) - 1]
        out.add(row[header.index(hit.field)][hit.start : hit.end])
    return out


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_no_detected_identifier_survives(
    table: Path, tmp_path: Path, preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_PII_KEY", KEY)
    before = table.read_bytes()
    raw = _raw_identifiers(table)
    assert {"John Smith", "123-45-6788", "(212) 736-5000", "03/14/1951"} <= raw
    out = tmp_path / "out.csv"
    anonymize(table, out, load_config(preset, None))
    text = out.read_text()
    assert not [r for r in raw if r in text]
    assert table.read_bytes() == before


def test_safe_harbor_output_exactly(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = anonymize(table, out, PRESETS["hipaa-safe-harbor"])
    assert out.read_text().splitlines() == [
        "name,dob,zip,age,diagnosis,notes",
        "[PERSON],1951,000,90+,E11.9,call [PHONE_NUMBER]",
        "[PERSON],1980,627,45,I10,ok",
        '[PERSON],1975,627,45,I10,"SSN [US_SSN], BP 120/80"',
        "broken,row",
        "[PERSON],1975,627,45,J45.909,lab glucose 5.6 mmol/L",
    ]
    assert result.malformed == [5]
    assert result.n_records == 5
    assert result.quasi_identifiers == ["dob", "zip", "age"]
    assert result.k_anonymity == 1


def test_pseudonyms_are_keyed_and_stable(table: Path, tmp_path: Path) -> None:
    config = PRESETS["gdpr-pseudonymize"].model_copy(update={"key_file": tmp_path / "k"})
    (tmp_path / "k").write_text(KEY)
    anonymize(table, tmp_path / "a.csv", config)
    anonymize(table, tmp_path / "b.csv", config)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    (tmp_path / "k").write_text(KEY[::-1])
    anonymize(table, tmp_path / "c.csv", config)
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
    assert "PERSON_" in (tmp_path / "a.csv").read_text()


def test_drop_column_and_l_diversity(table: Path, tmp_path: Path) -> None:
    config = AnonymizeConfig(
        entities={"DATE_TIME": "generalize", "ZIP_CODE": "generalize"},
        columns={"notes": "drop"},
        quasi_identifiers=["zip"],
        sensitive="diagnosis",
    )
    result = anonymize(table, tmp_path / "out.csv", config)
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "name,dob,zip,age,diagnosis"
    assert result.dropped_columns == ["notes"]
    assert (result.k_anonymity, result.l_diversity) == (1, 1)


def test_jsonl_fields_scrubbed_and_shape_kept(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps({"id": 7, "text": "SSN 123-45-6788 seen"}) + "\n")
    anonymize(path, tmp_path / "o.jsonl", PRESETS["hipaa-safe-harbor"])
    assert json.loads((tmp_path / "o.jsonl").read_text()) == {"id": 7, "text": "SSN [US_SSN] seen"}


@pytest.mark.parametrize(
    ("entity", "value", "expected"),
    [
        ("DATE_TIME", "March 3rd, 1948", "1948"),
        ("ZIP_CODE", "10001-1234", "100"),
        ("ZIP_CODE", "89012", "000"),
        ("ZIP_CODE", "SW1A 2AA", "SW1A"),
        ("ZIP_CODE", "M1 1AE", "M1"),
        ("ZIP_CODE", "K1A 0B6", "K1A"),
        ("AGE_OVER_89", "91", "90+"),
        ("AGE_OVER_89", "67", "67"),
        ("PERSON", "John Smith", "[PERSON]"),
    ],
)
def test_generalize(entity: str, value: str, expected: str) -> None:
    assert generalize(entity, value) == expected


def test_missing_key_fails_before_writing(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BASTION_PII_KEY", raising=False)
    with pytest.raises(ConfigError, match="BASTION_PII_KEY"):
        anonymize(table, tmp_path / "out.csv", PRESETS["gdpr-pseudonymize"])
    assert list(tmp_path.iterdir()) == [table]


@pytest.mark.parametrize(
    ("preset", "config", "match"),
    [
        ("nope", None, "unknown preset"),
        (None, '{"default": "shred"}', "operators"),
        (None, '{"colour": 1}', "colour"),
        (None, "{not json", "not valid JSON"),
        (None, '{"entities": {"SSN": "redact"}}', "unknown entity type 'SSN'"),
    ],
)
def test_bad_preset_or_config(
    tmp_path: Path, preset: str | None, config: str | None, match: str
) -> None:
    path = None
    if config is not None:
        path = tmp_path / "c.json"
        path.write_text(config)
    with pytest.raises(ConfigError, match=match):
        load_config(preset, path)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    numbers=st.lists(st.integers(min_value=-(10**6), max_value=10**6), min_size=1, max_size=30),
    words=st.lists(st.sampled_from(["ok", "I10", "E11.9", "120/80", "v2.3.1", ""]), min_size=30,
                   max_size=30),
)  # fmt: skip
def test_non_pii_values_and_row_count_survive_exactly(numbers: list[int], words: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        rows = [[str(n), words[i], "j.doe@example.com"] for i, n in enumerate(numbers)]
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows([["count", "code", "email"], *rows])
        anonymize(path, out, PRESETS["hipaa-safe-harbor"])
        got = list(csv.reader(out.read_text().splitlines()))
    assert got[0] == ["count", "code", "email"]
    assert [r[:2] for r in got[1:]] == [r[:2] for r in rows]
    assert all(r[2] == "[EMAIL_ADDRESS]" for r in got[1:])


def test_parquet_keeps_schema_types_and_non_pii(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "name": ["John Smith", None, "Mary Jones"],
        "note": ["SSN 123-45-6788", "BP 120/80", "ok"],
        "visits": pa.array([3, 4, None], type=pa.int32()),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "in.parquet")
    result = anonymize(
        tmp_path / "in.parquet", tmp_path / "o.parquet", PRESETS["hipaa-safe-harbor"]
    )
    got = pq.read_table(tmp_path / "o.parquet")
    assert got.schema == table.schema
    assert got.to_pydict() == {
        "name": ["[PERSON]", None, "[PERSON]"],
        "note": ["SSN [US_SSN]", "BP 120/80", "ok"],
        "visits": [3, 4, None],
    }
    assert result.n_records == 3


def test_parquet_k_anonymity_and_l_diversity(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "dob": ["1951-03-14", "1951-07-02", "1980-02-01", "1980-05-05", "1980-09-09"],
        "zip": ["62704", "62701", "62704", "62799", "62710"],
        "dx": ["I10", "E11.9", "I10", "I10", "J45.909"],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "in.parquet")
    config = PRESETS["hipaa-safe-harbor"].model_copy(update={"sensitive": "dx"})
    result = anonymize(tmp_path / "in.parquet", tmp_path / "o.parquet", config)
    got = pq.read_table(tmp_path / "o.parquet").to_pydict()
    assert got["dob"] == ["1951", "1951", "1980", "1980", "1980"]
    assert got["zip"] == ["627"] * 5
    # Classes (1951, 627) x2 with {I10, E11.9} and (1980, 627) x3 with {I10, J45.909}.
    assert result.quasi_identifiers == ["dob", "zip"]
    assert (result.k_anonymity, result.l_diversity) == (2, 2)


def test_jsonl_k_anonymity_over_named_fields(tmp_path: Path) -> None:
    rows = [
        {"band": "90+", "zip3": "627", "dx": "I10", "text": "ok"},
        {"band": "90+", "zip3": "627", "dx": "I10", "text": "ok"},
        {"band": "40-49", "zip3": "627", "dx": "E11.9", "text": "SSN 123-45-6788"},
    ]
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = AnonymizeConfig(quasi_identifiers=["band", "zip3"], sensitive="dx")
    result = anonymize(path, tmp_path / "o.jsonl", config)
    assert (result.k_anonymity, result.l_diversity) == (1, 1)
    assert result.quasi_identifiers == ["band", "zip3"]


def test_unknown_quasi_identifier_fails_before_writing(table: Path, tmp_path: Path) -> None:
    config = AnonymizeConfig(quasi_identifiers=["zip", "postcode"])
    with pytest.raises(ConfigError, match="postcode"):
        anonymize(table, tmp_path / "out.csv", config)
    assert list(tmp_path.iterdir()) == [table]


def test_progress_reaches_the_record_count(table: Path, tmp_path: Path) -> None:
    from bastion.progress import ProgressEvent

    events: list[ProgressEvent] = []
    result = anonymize(table, tmp_path / "out.csv", AnonymizeConfig(), progress=events.append)
    assert events[-1].done and events[-1].completed == result.n_records == 5


def test_naming_an_opt_in_type_switches_it_on(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("user 123e4567-e89b-12d3-a456-426614174000 logged in\n")
    anonymize(path, tmp_path / "a.txt", AnonymizeConfig())
    assert (tmp_path / "a.txt").read_text() == path.read_text()
    anonymize(path, tmp_path / "b.txt", AnonymizeConfig(entities={"UUID": "redact"}))
    assert (tmp_path / "b.txt").read_text() == "user [UUID] logged in\n"


def test_parquet_identifiers_in_typed_columns_do_not_survive(tmp_path: Path) -> None:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "ssn": pa.array([123456788, 536225384], type=pa.int64()),
        "dob": pa.array([dt.date(1951, 3, 14), dt.date(1980, 2, 1)], type=pa.date32()),
        "age": pa.array([92, 45], type=pa.int32()),
        "visits": pa.array([3, 4], type=pa.int32()),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "in.parquet")
    anonymize(tmp_path / "in.parquet", tmp_path / "o.parquet", PRESETS["hipaa-safe-harbor"])
    got = pq.read_table(tmp_path / "o.parquet")
    assert got.to_pydict() == {
        "ssn": ["[US_SSN]", "[US_SSN]"],
        "dob": ["1951", "1980"],
        "age": ["90+", "45"],
        "visits": [3, 4],
    }
    assert got.schema.field("visits").type == pa.int32()  # no identifiers: type kept


def test_free_text_column_mentioning_dates_is_not_a_date_column(tmp_path: Path) -> None:
    path = tmp_path / "free.csv"
    path.write_text("id,notes\n1,seen 2023-01-02 ok\n2,call 2023-01-05 done\n3,all fine today\n")
    result = anonymize(path, tmp_path / "out.csv", PRESETS["hipaa-safe-harbor"])
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "id,notes",
        "1,seen 2023 ok",
        "2,call 2023 done",
        "3,all fine today",  # no date in it, so nothing to replace
    ]
    assert result.quasi_identifiers == []


def test_jsonl_numbers_nested_values_and_dropped_fields(tmp_path: Path) -> None:
    rows = [
        {"id": i, "ssn": ssn, "name": name, "tags": ["call 212-736-5000"],
         "meta": {"email": "a.b@example.org"}, "text": "all fine", "secret": "x"}
        for i, (ssn, name) in enumerate(
            [(123456788, "Xavi Quorra"), (536225384, "John Smith"), (78123456, "Mary Jones")]
        )
    ]  # fmt: skip
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = PRESETS["hipaa-safe-harbor"].model_copy(update={"columns": {"secret": "drop"}})
    result = anonymize(path, tmp_path / "o.jsonl", config)
    out = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert out[0] == {
        "id": 0,  # a number in a field that holds no identifiers stays a number
        "ssn": "[US_SSN]",  # the field is named like SSNs: its numbers are replaced too
        "name": "[PERSON]",  # a name no list knows, in a field of names
        "tags": ["call [PHONE_NUMBER]"],
        "meta": {"email": "[EMAIL_ADDRESS]"},
        "text": "all fine",
    }
    assert result.dropped_columns == ["secret"]
