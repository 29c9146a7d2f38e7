"""What a file is, from its content: magic bytes and structure, never its name alone.

:func:`detect_format` reads at most a few KiB (plus the central directory of a zip and
the top-level field tags of a protobuf), so it is cheap on multi-GB model files and
never unpickles, decompresses a whole stream or imports a model library. The file's
suffix only breaks ties (a headerless protocol-0 pickle that also reads as text) and
lets :func:`suffix_mismatch` report a file whose name promises something else, such as
a pickle renamed to ``.safetensors``.

Used by the model loaders, the data loader, the artifact-integrity check and the
supply-chain scanner.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import hashlib
import io
import lzma
import os
import pickletools
import struct
import zipfile
import zlib
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bastion.errors import InputNotFoundError, UnreadableInputError

__all__ = [
    "PICKLE_FORMATS",
    "Format",
    "detect_format",
    "sha256_file",
    "suffix_mismatch",
]

_HEAD = 4096
_PICKLE_PROBE = 1 << 20


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


class Format(StrEnum):
    """Every file format bastion tells apart; the value is the name reports show."""

    PICKLE = "pickle"
    TORCH_LEGACY = "torch-legacy"
    TORCH_ZIP = "torch-zip"
    TORCHSCRIPT = "torchscript"
    TORCH_EXPORT = "torch-export"
    JOBLIB = "joblib"
    NUMPY_NPY = "numpy-npy"
    NUMPY_NPZ = "numpy-npz"
    SAFETENSORS = "safetensors"
    ONNX = "onnx"
    SKOPS = "skops"
    HDF5 = "hdf5"
    KERAS_H5 = "keras-h5"
    KERAS_V3 = "keras-v3"
    GGUF = "gguf"
    TFLITE = "tflite"
    TF_SAVEDMODEL = "tf-savedmodel"
    PARQUET = "parquet"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"
    CSV = "csv"
    TEXT = "text"
    DIRECTORY = "directory"
    EMPTY = "empty"
    UNKNOWN = "unknown"


# Files that are a pickle stream themselves (joblib's possibly compressed). The zip-based
# torch formats hold pickles inside too; bastion opens those only with torch's weights-only
# unpickler or after the artifact scanner has cleared them.
PICKLE_FORMATS = frozenset({Format.PICKLE, Format.TORCH_LEGACY, Format.JOBLIB})

# What a suffix promises. A file whose content is none of these is reported as a mismatch.
_SUFFIXES: dict[str, frozenset[Format]] = {
    ".pkl": frozenset({Format.PICKLE}),
    ".pickle": frozenset({Format.PICKLE}),
    ".joblib": frozenset({Format.JOBLIB, Format.PICKLE}),
    ".pt": frozenset({Format.TORCH_ZIP, Format.TORCHSCRIPT, Format.TORCH_LEGACY}),
    ".pth": frozenset({Format.TORCH_ZIP, Format.TORCHSCRIPT, Format.TORCH_LEGACY}),
    ".pt2": frozenset({Format.TORCH_EXPORT}),
    ".npy": frozenset({Format.NUMPY_NPY}),
    ".npz": frozenset({Format.NUMPY_NPZ}),
    ".safetensors": frozenset({Format.SAFETENSORS}),
    ".onnx": frozenset({Format.ONNX}),
    ".skops": frozenset({Format.SKOPS}),
    ".h5": frozenset({Format.HDF5, Format.KERAS_H5}),
    ".hdf5": frozenset({Format.HDF5, Format.KERAS_H5}),
    ".keras": frozenset({Format.KERAS_V3, Format.KERAS_H5}),
    ".gguf": frozenset({Format.GGUF}),
    ".tflite": frozenset({Format.TFLITE}),
    ".parquet": frozenset({Format.PARQUET}),
    ".zip": frozenset({Format.ZIP, Format.NUMPY_NPZ, Format.SKOPS}),
    ".tar": frozenset({Format.TAR}),
    ".gz": frozenset({Format.GZIP, Format.JOBLIB}),
    ".bz2": frozenset({Format.BZ2, Format.JOBLIB}),
    ".xz": frozenset({Format.XZ, Format.JOBLIB}),
    ".lzma": frozenset({Format.LZMA, Format.JOBLIB}),
    ".csv": frozenset({Format.CSV, Format.TEXT}),
    ".tsv": frozenset({Format.CSV, Format.TEXT}),
    ".txt": frozenset({Format.TEXT, Format.CSV}),
    ".json": frozenset({Format.TEXT}),
}

# Suffixes under which a headerless byte stream is more likely a pickle than text.
_PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt"})
_TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".json", ".md", ".yaml", ".yml"})

# torch.save since 1.6 writes this pickled magic number first when it uses the legacy format.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
# ModelProto field number → protobuf wire type (0 varint, 2 length-delimited).
_ONNX_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_ONNX_GRAPH, _ONNX_IR_VERSION = 7, 1
_CSV_DELIMITERS = ",;\t|"
_TEXT_CONTROLS = bytes(set(range(32)) - {9, 10, 12, 13, 27})
# Opcodes a protocol 0/1 pickle (which has no header) can open with.
_PROTO0_START = frozenset(b"(cdl}])NIFSVKJMGTUXL")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content, streamed so that large models use little memory."""
    with _open(Path(path)) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def detect_format(path: str | os.PathLike[str]) -> Format:
    """The format of the file or folder at ``path``, judged by its content.

    Raises ``InputNotFoundError`` when nothing is there and ``UnreadableInputError``
    when it cannot be read.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
            return Format.TF_SAVEDMODEL
        return Format.DIRECTORY
    with _open(p) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_HEAD)
        if size == 0:
            return Format.EMPTY
        return _by_content(f, head, size, p.suffix.lower())


def suffix_mismatch(path: str | os.PathLike[str], fmt: Format) -> str | None:
    """One line when the file's suffix promises another format than ``fmt``, else None."""
    suffix = Path(path).suffix.lower()
    expected = _SUFFIXES.get(suffix)
    if expected is None or fmt in expected or fmt in (Format.EMPTY, Format.DIRECTORY):
        return None
    names = " or ".join(sorted(expected))
    return f"named {suffix} (expected {names}) but the content is {fmt}"


def _open(path: Path) -> io.BufferedReader:
    if path.is_dir():
        raise UnreadableInputError(f"{path} is a folder; give a file")
    if path.exists() and not path.is_file():  # a FIFO or device would block or never end
        raise UnreadableInputError(f"{path} is not a regular file; give a file or a folder")
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise InputNotFoundError(f"{path} does not exist; check the path") from None
    except OSError as e:
        raise UnreadableInputError(
            f"cannot read {path} ({e.strerror or e}); check its permissions"
        ) from None


def _by_content(f: io.BufferedReader, head: bytes, size: int, suffix: str) -> Format:
    magic = _by_magic(f, head, size)
    if magic is not None:
        return magic
    if _is_onnx(f, size):
        return Format.ONNX
    proto0 = head[0] in _PROTO0_START and _parses_as_pickle(f, size)
    text = _is_text(head)
    if proto0 and not (text and suffix in _TEXT_SUFFIXES):
        return Format.PICKLE
    if text:
        return Format.CSV if _looks_like_csv(head, size, suffix) else Format.TEXT
    return Format.UNKNOWN


def _by_magic(f: io.BufferedReader, head: bytes, size: int) -> Format | None:
    """Formats that announce themselves in their first bytes."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_kind(f)
    if head[:6] == b"\x93NUMPY":
        return Format.NUMPY_NPY
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return _hdf5_kind(f)
    if head[:4] == b"GGUF":
        return Format.GGUF
    if head[4:8] == b"TFL3":
        return Format.TFLITE
    if head[:4] == b"PAR1" and size >= 8 and _tail(f, size) == b"PAR1":
        return Format.PARQUET
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return Format.TORCH_LEGACY
    # Before pickle: a header length such as 896 (0x0380) starts with the bytes 80 03.
    if _is_safetensors(head, size):
        return Format.SAFETENSORS
    if _starts_like_pickle(head):
        return Format.JOBLIB if b"joblib.numpy_pickle" in head else Format.PICKLE
    if len(head) > 262 and head[257:262] == b"ustar":
        return Format.TAR
    return _compressed_kind(head)


def _tail(f: io.BufferedReader, size: int) -> bytes:
    f.seek(size - 4)
    return f.read(4)


def _zip_kind(f: io.BufferedReader) -> Format:
    """Tell zip-based formats apart by the names in the central directory (nothing extracted)."""
    try:
        with zipfile.ZipFile(f) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return Format.ZIP
    tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
        return Format.TORCHSCRIPT
    if "archive_format" in tails and any(t.startswith("models/") for t in tails):
        return Format.TORCH_EXPORT
    if "data.pkl" in tails:
        return Format.TORCH_ZIP
    if "schema.json" in names:
        return Format.SKOPS
    if "config.json" in names and "model.weights.h5" in names:
        return Format.KERAS_V3
    if names and all(n.endswith(".npy") for n in names):
        return Format.NUMPY_NPZ
    return Format.ZIP


def _hdf5_kind(f: io.BufferedReader) -> Format:
    """Keras stores its model config as root attributes; their names sit in the header."""
    f.seek(0)
    window = f.read(_PICKLE_PROBE)
    if b"keras_version" in window or b"model_config" in window:
        return Format.KERAS_H5
    return Format.HDF5


def _is_safetensors(head: bytes, size: int) -> bool:
    """An 8-byte little-endian header length, then a JSON object that fits in the file."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _compressed_kind(head: bytes) -> Format | None:
    """A compressed stream; one that holds a pickle is what joblib writes with ``compress``."""
    for magic, fmt, decompressor in _COMPRESSED:
        if not head.startswith(magic):
            continue
        try:
            inner = decompressor().decompress(head, 64)
        except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError):
            return None
        if _starts_like_pickle(inner):
            return Format.JOBLIB
        return fmt
    return None


def _zlib() -> _Decompressor:
    return zlib.decompressobj()


def _gzip() -> _Decompressor:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)


def _lzma_alone() -> _Decompressor:
    return lzma.LZMADecompressor(lzma.FORMAT_ALONE)


def _xz() -> _Decompressor:
    return lzma.LZMADecompressor(lzma.FORMAT_XZ)


# A bare zlib stream has no format of its own here: only a joblib pickle counts.
_COMPRESSED: tuple[tuple[bytes, Format | None, Callable[[], _Decompressor]], ...] = (
    (b"\x1f\x8b", Format.GZIP, _gzip),
    (b"BZh", Format.BZ2, bz2.BZ2Decompressor),
    (b"\xfd7zXZ\x00", Format.XZ, _xz),
    (b"\x5d\x00\x00", Format.LZMA, _lzma_alone),
    (b"\x78", None, _zlib),
)


def _starts_like_pickle(data: bytes) -> bool:
    return len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5


def _parses_as_pickle(f: io.BufferedReader, size: int) -> bool:
    """Walk the opcodes (never executing them) of a headerless protocol 0/1 stream.

    True when the walk reaches STOP, or, in a file larger than the probe window, parses
    cleanly through most of the window (the window may cut the last opcode).
    """
    f.seek(0)
    window = f.read(_PICKLE_PROBE)
    last = 0
    try:
        for opcode, _, pos in pickletools.genops(io.BytesIO(window)):
            last = pos or 0
            if opcode.name == "STOP":
                return True
    except (ValueError, UnicodeDecodeError, struct.error):
        pass
    return size > len(window) and last > len(window) // 2


def _is_onnx(f: io.BufferedReader, size: int) -> bool:
    """Walk the top-level protobuf fields: all must be ModelProto fields, a graph present.

    Only tags and lengths are read; length-delimited bodies are skipped with a seek, so
    a multi-GB model costs a handful of reads.
    """
    seen: set[int] = set()
    pos = 0
    while pos < size:
        f.seek(pos)
        buf = f.read(20)
        try:
            key, pos_in = _varint(buf, 0)
        except ValueError:
            return False
        number, wire = key >> 3, key & 7
        if _ONNX_MODEL_FIELDS.get(number) != wire:
            return False
        try:
            value, pos_in = _varint(buf, pos_in)
        except ValueError:
            return False
        pos += pos_in + (value if wire == 2 else 0)
        seen.add(number)
    return pos == size and {_ONNX_GRAPH, _ONNX_IR_VERSION} <= seen


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def _is_text(head: bytes) -> bool:
    """UTF-8 without control bytes other than whitespace (and ESC, for coloured logs)."""
    if head.translate(None, _TEXT_CONTROLS) != head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_csv(head: bytes, size: int, suffix: str) -> bool:
    """At least two columns (quotes respected), the same on every complete line of the head."""
    lines = head.decode("utf-8", errors="replace").splitlines()
    if len(head) < size and len(lines) > 1:
        lines = lines[:-1]  # the last line of a truncated head may be cut short
    lines = [ln for ln in lines[:50] if ln.strip()]
    if not lines:
        return False
    for delim in _CSV_DELIMITERS:
        try:
            widths = {len(row) for row in csv.reader(lines, delimiter=delim)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() >= 2:
            return True
    return suffix in (".csv", ".tsv")
