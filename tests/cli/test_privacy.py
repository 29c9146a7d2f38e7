"""`bastion privacy audit` through the real CLI: exit codes, JSON detections, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _bastion(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("BASTION_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", "privacy", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_audit_json_lists_every_detection(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,ssn\nJohn Smith,123-45-6788\nMary Jones,none\n")
    run = _bastion("audit", path)
    assert run.returncode == 1  # an SSN is a high finding
    report = json.loads(run.stdout)
    detections = [d for f in report["findings"] for d in f["evidence"].get("detections", [])]
    assert sorted((d["record"], d["field"], d["entity"]) for d in detections) == [
        ("2", "name", "PERSON"), ("2", "ssn", "US_SSN"), ("3", "name", "PERSON"),
    ]  # fmt: skip
    assert "123-45-6788" not in run.stdout and "John Smith" not in run.stdout


def test_audit_clean_file_exits_zero_and_writes_report(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("BP 120/80 at 10:30, version 2.3.1\n")
    out = tmp_path / "r.md"
    run = _bastion("audit", path, "--out", out, "-q")
    assert run.returncode == 0, run.stderr
    assert out.read_text().startswith("# bastion report")


def test_binary_as_text_is_one_line_exit_2_no_output(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x00\x01\x02binary")
    out = tmp_path / "r.json"
    run = _bastion("audit", path, "--out", out)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "binary" in run.stderr
    assert not out.exists()


def test_anonymize_writes_copy_and_reports_k(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,zip,notes\nJohn Smith,62704,SSN 123-45-6788\n")
    out = tmp_path / "o.csv"
    run = _bastion("anonymize", path, "--out", out, "--preset", "hipaa-safe-harbor")
    assert run.returncode == 0, run.stderr
    assert out.read_text() == "name,zip,notes\n[PERSON],627,SSN [US_SSN]\n"
    assert "k-anonymity 1" in run.stderr


def test_anonymize_missing_key_is_one_line_exit_2_no_output(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name\nJohn Smith\n")
    out = tmp_path / "o.csv"
    run = _bastion("anonymize", path, "--out", out, "--preset", "gdpr-pseudonymize",
                   "--key-file", tmp_path / "missing.key")  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "key" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_wrong_encoding_and_unknown_operator_exit_2(tmp_path: Path) -> None:
    latin = tmp_path / "l.txt"
    latin.write_bytes("café SSN".encode("latin-1"))
    run = _bastion("audit", latin)
    assert run.returncode == 2 and "--encoding" in run.stderr and run.stdout == ""
    config = tmp_path / "c.json"
    config.write_text('{"default": "shred"}')
    out = tmp_path / "o.txt"
    run = _bastion("anonymize", latin, "--out", out, "--config", config, "--encoding", "latin-1")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and not out.exists()


def test_entities_and_opt_in_choose_what_is_looked_for(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Mail j.smith@example.com, SSN 123-45-6788, "
                    "run 123e4567-e89b-12d3-a456-426614174000\n")
    only_email = json.loads(_bastion("audit", path, "--entities", "EMAIL_ADDRESS").stdout)
    assert {f["id"] for f in only_email["findings"]} == {"pii/email-address"}
    default = json.loads(_bastion("audit", path).stdout)
    assert not any("uuid" in f["id"] for f in default["findings"])
    opted = json.loads(_bastion("audit", path, "--opt-in", "UUID").stdout)
    assert any("uuid" in f["id"] for f in opted["findings"])
    unknown = _bastion("audit", path, "--entities", "SHOE_SIZE")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "SHOE_SIZE" in unknown.stderr and unknown.stdout == ""

