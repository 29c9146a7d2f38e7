"""npy, safetensors and GGUF header checks: consistent headers pass, lies are findings."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from bastion.report.finding import Severity
from bastion.supplychain._headers import scan_gguf, scan_npy, scan_safetensors


class _Getcwd:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return os.getcwd, ()


def st(header: dict[str, object], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_npy_plain_and_object_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int32).reshape(2, 3))
    assert scan_npy((tmp_path / "a.npy").read_bytes()) == []
    np.save(tmp_path / "o.npy", np.array([1, "x"], dtype=object), allow_pickle=True)
    assert [(i.rule, i.severity) for i in scan_npy((tmp_path / "o.npy").read_bytes())] == [
        ("object-array", Severity.INFO)]
    np.save(tmp_path / "e.npy", np.array([_Getcwd()], dtype=object), allow_pickle=True)
    rules = {i.rule for i in scan_npy((tmp_path / "e.npy").read_bytes())}
    assert rules == {"object-array", "dangerous-global"}


def test_npy_truncated_and_malformed(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(100.0))
    data = (tmp_path / "a.npy").read_bytes()
    assert [i.rule for i in scan_npy(data[:-8])] == ["truncated-data"]
    assert [i.rule for i in scan_npy(data[:12])] == ["malformed-npy"]
    assert [i.rule for i in scan_npy(b"\x93NUMPY\x01\x00\x08\x00{bad}   ")] == ["malformed-npy"]


def test_safetensors_valid() -> None:
    data = st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "__metadata__": {"format": "pt"}}, b"\0" * 8)
    assert scan_safetensors(data) == []


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, "outside"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, "needs 12"),
        ({"w": {"dtype": "X9", "shape": [2], "data_offsets": [0, 8]}}, "unknown dtype"),
        ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, "bad shape"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, "overlap"),
        ({"__metadata__": {"k": 1}}, "__metadata__"),
    ],
)
def test_safetensors_inconsistent(header: dict[str, object], needle: str) -> None:
    [issue] = scan_safetensors(st(header, b"\0" * 8))
    assert issue.rule == "malformed-safetensors" and needle in issue.detail


def test_safetensors_header_length_lies() -> None:
    assert scan_safetensors(struct.pack("<Q", 1 << 40) + b"{}")[0].rule == "malformed-safetensors"


def gguf(kvs: list[tuple[bytes, int, bytes]], version: int = 3) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs))
    for key, vtype, value in kvs:
        out += struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + value
    return out


def test_gguf_valid_and_benign_template() -> None:
    template = b"{% for m in messages %}{{ m['content'] }}{% endfor %}"
    data = gguf([(b"general.name", 8, struct.pack("<Q", 3) + b"abc"),
                 (b"tokenizer.chat_template", 8, struct.pack("<Q", len(template)) + template),
                 (b"tokens", 9, struct.pack("<IQ", 4, 2) + b"\0" * 8)])
    assert scan_gguf(data) == []


def test_gguf_lies_are_findings() -> None:
    assert scan_gguf(gguf([], version=99))[0].rule == "malformed-gguf"
    overrun = gguf([(b"k", 8, struct.pack("<Q", 1 << 30) + b"x")])
    assert scan_gguf(overrun)[0].rule == "malformed-gguf"
    assert scan_gguf(b"GGUF\x03")[0].rule == "malformed-gguf"


def test_tokenizer_config_chat_templates() -> None:
    from bastion.supplychain._headers import scan_tokenizer_config

    benign = {"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}
    assert scan_tokenizer_config(json.dumps(benign).encode()) == []
    evil = {"chat_template": [{"name": "tool_use", "template": "{{ ''.__class__.__mro__ }}"}]}
    [issue] = scan_tokenizer_config(json.dumps(evil).encode())
    assert issue.rule == "template-injection" and issue.subject == "chat_template:tool_use"
    assert scan_tokenizer_config(b"not json") == []
