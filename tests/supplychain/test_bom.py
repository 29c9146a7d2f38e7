"""The ML-BOM validates against the CycloneDX 1.6 schema and lists what it should."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest

from bastion.supplychain.bom import build_bom

pytest.importorskip("cyclonedx")


def _validate(text: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def test_bom_lists_models_with_hashes_formats_and_verdicts(tmp_path: Path) -> None:
    (tmp_path / "clean.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x02cposix\ngetcwd\n)R.")
    (tmp_path / "README.md").write_text("# model")
    text = build_bom(tmp_path, environment=False)
    _validate(text)
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6"
    models = {c["name"]: c for c in doc["components"]}
    assert set(models) == {"clean.pkl", "evil.pkl"}
    clean = models["clean.pkl"]
    assert clean["type"] == "machine-learning-model"
    assert clean["hashes"][0]["content"] == hashlib.sha256(
        (tmp_path / "clean.pkl").read_bytes()).hexdigest()
    props = {p["name"]: p["value"] for p in clean["properties"]}
    assert props["bastion:format"] == "pickle" and props["bastion:scan"] == "clear"
    evil = {p["name"]: p["value"] for p in models["evil.pkl"]["properties"]}
    assert evil["bastion:scan"] == "critical"


def test_bom_lists_the_environment(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(pickle.dumps([1]))
    text = build_bom(tmp_path / "m.pkl")
    _validate(text)
    libraries = {c["name"].lower(): c for c in json.loads(text)["components"]
                 if c["type"] == "library"}
    assert "numpy" in libraries and libraries["numpy"]["purl"].startswith("pkg:pypi/numpy@")
