"""Format detection from content; the suffix only breaks ties and reveals mismatches."""

from __future__ import annotations

import struct

import pytest

from bastion.supplychain._detect import detect

LEGACY = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02"


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"PK\x03\x04rest", "model.pt", "zip"),
        (b"\x93NUMPY\x01\x00", "a.bin", "npy"),
        (b"\x89HDF\r\n\x1a\n", "m.keras", "hdf5"),
        (b"GGUF\x03\x00\x00\x00", "m", "gguf"),
        (b"\x1c\x00\x00\x00TFL3", "m.tflite", "tflite"),
        (LEGACY, "m.pt", "torch-legacy"),
        (b"\x80\x04\x95", "weights.safetensors", "pickle"),
        (b"\x1f\x8b\x08\x00", "m.gz", "gzip"),
        (b"BZh91AY", "m.bz2", "bz2"),
        (b"\xfd7zXZ\x00\x00", "m.xz", "xz"),
        (struct.pack("<Q", 20) + b'{"w": {}}' + b" " * 11, "m.safetensors", "safetensors"),
        (b"\x08\x07\x12\x04onnx", "m.onnx", "onnx"),
        (b"(dp0\nS'a'\n", "model.pkl", "pickle"),
        (b"(dp0\nS'a'\n", "notes.txt", "text"),
        (b"# model card\n", "README.md", "text"),
        (bytes(range(256)), "blob", "unknown"),
    ],
)
def test_detect(head: bytes, name: str, expected: str) -> None:
    assert detect(head, name, max(len(head), 64)) == expected


def test_empty() -> None:
    assert detect(b"", "x.pkl", 0) == "empty"
