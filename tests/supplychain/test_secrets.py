"""Secrets detection: named detectors are high, entropy guesses low, values masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.report.finding import Severity
from bastion.supplychain.secrets import find_secrets, mask

pytest.importorskip("detect_secrets")


def test_mask_keeps_four_characters_and_the_length() -> None:
    assert mask("AKIAIOSFODNN7EXAMPLE") == "AKIA… (20 chars)"


def test_named_and_guessed_secrets(tmp_path: Path) -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----"
    path = tmp_path / "train.ipynb"
    path.write_text(
        '{"cells": [{"source": ["aws_key = \\"AKIAIOSFODNN7EXAMPLE\\"\\n"]}]}\n'
        f"{key}\n"
        'seed = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"\n'
        "plain words only\n"
    )
    found = {i.subject: i for i in find_secrets(path)}
    assert found["line1"].severity is Severity.HIGH and "AWS" in found["line1"].title
    assert found["line2"].severity is Severity.HIGH and "Private Key" in found["line2"].title
    assert "line4" not in found
    assert all("AKIAIOSFODNN7EXAMPLE" not in i.detail for i in found.values())


def test_clean_config_has_no_findings(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 768, "model_type": "bert"}\n')
    assert find_secrets(path) == []
