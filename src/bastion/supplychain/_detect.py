"""Format detection by content (magic bytes and structure), never by file name alone.

The suffix is used only to notice a mismatch (a ``.safetensors`` file that is really a
pickle) and, for formats without a magic number (ONNX, SavedModel), to decide whether
to try parsing at all.
"""

from __future__ import annotations

import codecs
import struct

__all__ = ["CODE_FORMATS", "PROTO0_START", "SUFFIX_FORMATS", "detect"]

_LEGACY_TORCH = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
PROTO0_START = frozenset(b"(cdl}]NIFSVKJMGTUXL)")

# What a suffix promises; used to flag content that is something else.
SUFFIX_FORMATS: dict[str, frozenset[str]] = {
    ".safetensors": frozenset({"safetensors"}),
    ".onnx": frozenset({"onnx"}),
    ".npy": frozenset({"npy"}),
    ".npz": frozenset({"npz", "zip"}),
    ".gguf": frozenset({"gguf"}),
    ".h5": frozenset({"hdf5"}),
    ".hdf5": frozenset({"hdf5"}),
    ".keras": frozenset({"keras", "zip", "hdf5"}),
    ".json": frozenset({"text"}),
    ".txt": frozenset({"text"}),
    ".md": frozenset({"text"}),
    ".pb": frozenset({"protobuf"}),
    ".tflite": frozenset({"tflite"}),
}

# Formats that can run code when loaded; content like this behind a "safe" suffix is worse.
CODE_FORMATS = frozenset({"pickle", "torch-legacy", "zip", "gzip", "bz2", "xz", "joblib-zlib"})


def detect(head: bytes, name: str, size: int) -> str:
    """The format of a file from its first bytes (``head``, up to 4 KiB) and its name.

    Returns one of: empty, zip, tar, gzip, bz2, xz, lz4, joblib-zlib, torch-legacy,
    pickle, npy, safetensors, hdf5, gguf, tflite, onnx, protobuf, text, unknown.
    """
    if size == 0:
        return "empty"
    lower = name.lower()
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head[:4] == b"GGUF":
        return "gguf"
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.startswith(_LEGACY_TORCH):
        return "torch-legacy"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if head[:2] == b"ZF" or _is_zlib(head):
        # joblib's old 'ZF0x<length>' prefix, or a bare zlib stream (joblib's default
        # compressor since 0.10: ``compress=3`` writes one).
        return "joblib-zlib"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    if _is_safetensors(head, size):
        return "safetensors"
    if len(head) > 1 and head[0] == 0x80 and head[1] <= 5:
        return "pickle"
    if lower.endswith(".onnx"):
        return "onnx"
    if lower.endswith(".pb") or lower.endswith(".pbtxt"):
        return "protobuf"
    if head[0] in PROTO0_START and _pickle_suffix(lower):
        return "pickle"
    if _is_text(head):
        return "text"
    return "unknown"


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _pickle_suffix(lower: str) -> bool:
    """Protocol 0/1 pickles have no header: an opening opcode plus a pickle suffix decide."""
    return lower.endswith((".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt", ".dat"))


def _is_text(head: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _is_zlib(head: bytes) -> bool:
    """A zlib header (RFC 1950): deflate with a window <= 32 KiB and a valid check value."""
    return len(head) > 1 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0
