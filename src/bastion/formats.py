"""What a file is, from its content: magic bytes and structure, never its name alone.

:func:`detect_format` reads at most a few KiB (plus the central directory of a zip and
the top-level field tags of a protobuf), so it is cheap on multi-GB model files and
never unpickles, decompresses a whole stream or imports a model library. The file's
suffix only breaks ties (a headerless protocol-0 pickle that also reads as text) and
lets :func:`suffix_mismatch` report a file whose name promises something else, such as
a pickle renamed to ``.safetensors``.

The same rules run on bytes already in memory (an archive member, a decompressed
stream): :func:`detect_content` is :func:`detect_format` without the file, and
:func:`sniff` is its first, magic-number-only pass. This module is the one place that
knows what a format looks like: the model loaders, the data loader, the
artifact-integrity check and the supply-chain scanner all ask it.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import hashlib
import io
import lzma
import mmap
import os
import pickletools
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection
from enum import StrEnum
from pathlib import Path
from typing import IO, Protocol, cast

from bastion.errors import InputNotFoundError, UnreadableInputError

__all__ = [
    "CODE_FORMATS",
    "COMPRESSED_FORMATS",
    "PICKLE_FORMATS",
    "PICKLE_SUFFIXES",
    "SUFFIX_FORMATS",
    "TEXT_SUFFIXES",
    "Buffer",
    "Format",
    "decompressor",
    "detect_content",
    "detect_format",
    "sha256_file",
    "sniff",
    "suffix_mismatch",
    "zip_kind",
]

Buffer = bytes | mmap.mmap  # a whole file's bytes, read or memory-mapped

_HEAD = 4096
_PICKLE_PROBE = 1 << 20


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

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
    ZLIB = "zlib"
    LZ4 = "lz4"
    CSV = "csv"
    TEXT = "text"
    DIRECTORY = "directory"
    EMPTY = "empty"
    UNKNOWN = "unknown"


# Files that are a pickle stream themselves (joblib's possibly compressed). The zip-based
# torch formats hold pickles inside too; bastion opens those only with torch's weights-only
# unpickler or after the artifact scanner has cleared them.
PICKLE_FORMATS = frozenset({Format.PICKLE, Format.TORCH_LEGACY, Format.JOBLIB})
# Streams a compressor wrote; what is inside is a format of its own (joblib: a pickle).
COMPRESSED_FORMATS = frozenset({
    Format.GZIP, Format.BZ2, Format.XZ, Format.LZMA, Format.ZLIB, Format.LZ4})
# Content that can run Python code when its usual loader opens it: a pickle, or an
# archive or compressed stream that may hold one.
CODE_FORMATS = PICKLE_FORMATS | COMPRESSED_FORMATS | {
    Format.TORCH_ZIP, Format.TORCHSCRIPT, Format.TORCH_EXPORT, Format.ZIP, Format.TAR}

# What a suffix promises. A file whose content is none of these is reported as a mismatch.
SUFFIX_FORMATS: dict[str, frozenset[Format]] = {
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
    ".lz4": frozenset({Format.LZ4, Format.JOBLIB}),
    ".csv": frozenset({Format.CSV, Format.TEXT}),
    ".tsv": frozenset({Format.CSV, Format.TEXT}),
    ".txt": frozenset({Format.TEXT, Format.CSV}),
    ".json": frozenset({Format.TEXT}),
    ".md": frozenset({Format.TEXT, Format.CSV}),
}

# Suffixes under which a headerless byte stream is more likely a pickle than text.
PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".dat"})
# Suffixes under which protocol-0 pickle text is taken for text (its content decides else).
TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".json", ".md", ".yaml", ".yml"})

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
        if os.fstat(f.fileno()).st_size == 0:
            return Format.EMPTY
        try:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise UnreadableInputError(f"cannot map {p} ({e}); give a regular file") from None
    with data:
        return detect_content(data, p.suffix.lower())


def detect_content(data: Buffer, suffix: str = "") -> Format:
    """The format of a whole file's bytes (read or memory-mapped); ``suffix`` breaks ties.

    Only the head, a zip's central directory and a protobuf's top-level tags are read.
    """
    if not len(data):
        return Format.EMPTY
    fmt = sniff(data)
    if fmt is Format.ZIP:
        return _zip_kind(data)
    if fmt is Format.HDF5:
        return _hdf5_kind(data)
    if fmt in COMPRESSED_FORMATS:
        inner = _decompress_head(data[:_HEAD], fmt)
        if _starts_like_pickle(inner):
            return Format.JOBLIB
        if fmt is not Format.ZLIB:  # a bare zlib stream is only a format when joblib wrote it
            return fmt
    elif fmt is not None:
        return fmt
    head = data[:_HEAD]
    size = len(data)
    if _is_onnx(data, size):
        return Format.ONNX
    proto0 = head[0] in _PROTO0_START and _parses_as_pickle(data, size)
    text = _is_text(head)
    if proto0 and not (text and suffix in TEXT_SUFFIXES):
        return Format.PICKLE
    if text:
        return Format.CSV if _looks_like_csv(head, size, suffix) else Format.TEXT
    return Format.UNKNOWN


def sniff(data: Buffer) -> Format | None:
    """The formats that announce themselves in their first bytes; None when only the
    structure can tell (ONNX, a headerless pickle, text).

    A zip is ``Format.ZIP`` and an HDF5 file ``Format.HDF5`` here, whatever they hold,
    and a compressed stream is named by its compressor: :func:`detect_content` looks
    further, and the artifact scanner opens them itself.
    """
    size = len(data)
    head = data[:16]
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return Format.ZIP
    if head[:6] == b"\x93NUMPY":
        return Format.NUMPY_NPY
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return Format.HDF5
    if head[:4] == b"GGUF":
        return Format.GGUF
    if head[4:8] == b"TFL3":
        return Format.TFLITE
    if head[:4] == b"PAR1" and size >= 8 and data[size - 4:size] == b"PAR1":
        return Format.PARQUET
    if data[:len(_TORCH_LEGACY_MAGIC)] == _TORCH_LEGACY_MAGIC:
        return Format.TORCH_LEGACY
    # Before pickle: a header length such as 896 (0x0380) starts with the bytes 80 03.
    if _is_safetensors(data, size):
        return Format.SAFETENSORS
    if _starts_like_pickle(head):
        return Format.JOBLIB if data.find(b"joblib.numpy_pickle", 0, _HEAD) >= 0 \
            else Format.PICKLE
    if size > 262 and data[257:262] == b"ustar":
        return Format.TAR
    return _compressed_kind(data[:_HEAD])


def zip_kind(names: Collection[str]) -> Format:
    """Tell zip-based formats apart by their member names (nothing is extracted)."""
    tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
        return Format.TORCHSCRIPT
    if "archive_format" in tails and any(t.startswith("models/") for t in tails):
        return Format.TORCH_EXPORT
    if "data.pkl" in tails:
        return Format.TORCH_ZIP
    if "schema.json" in names:
        return Format.SKOPS
    if "config.json" in names and ("model.weights.h5" in names or "metadata.json" in names):
        return Format.KERAS_V3
    if names and all(n.endswith(".npy") for n in names):
        return Format.NUMPY_NPZ
    return Format.ZIP


def suffix_mismatch(path: str | os.PathLike[str], fmt: Format) -> str | None:
    """One line when the file's suffix promises another format than ``fmt``, else None."""
    suffix = Path(path).suffix.lower()
    expected = SUFFIX_FORMATS.get(suffix)
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


def _zip_kind(data: Buffer) -> Format:
    """A zip's kind from the names in its central directory."""
    try:
        fileobj = io.BytesIO(data) if isinstance(data, bytes) else cast("IO[bytes]", data)
        with zipfile.ZipFile(fileobj) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return Format.ZIP
    return zip_kind(names)


def _hdf5_kind(data: Buffer) -> Format:
    """Keras stores its model config as root attributes; their names sit in the header."""
    if data.find(b"keras_version", 0, _PICKLE_PROBE) >= 0 or \
            data.find(b"model_config", 0, _PICKLE_PROBE) >= 0:
        return Format.KERAS_H5
    return Format.HDF5


def _is_safetensors(data: Buffer, size: int) -> bool:
    """An 8-byte little-endian header length, then a JSON object that fits in the file."""
    if size < 9:
        return False
    (n,) = struct.unpack_from("<Q", data)
    return 2 <= n <= size - 8 and data[8] == 0x7B  # "{"


def _compressed_kind(head: bytes) -> Format | None:
    """A stream from a compressor, named by its magic number once its head decompresses."""
    if head[:4] == b"ZF0x":  # joblib < 0.10: 'ZF0x<length>', padding, then a zlib stream
        return Format.ZLIB
    if head[:4] == _LZ4_MAGIC:
        return Format.LZ4
    for magic, fmt, make in _COMPRESSED:
        if not head.startswith(magic):
            continue
        if fmt is Format.ZLIB and (len(head) < 2 or int.from_bytes(head[:2]) % 31):
            return None  # RFC 1950: the two header bytes are a multiple of 31
        return fmt if _inflate(make(), head) is not None else None
    return None


def decompressor(fmt: Format) -> _Decompressor:
    """A fresh incremental decompressor for a stream of one of ``COMPRESSED_FORMATS``.

    Raises ImportError for lz4 when the ``lz4`` package (the ``supplychain`` extra) is
    missing.
    """
    if fmt is Format.LZ4:
        import lz4.frame  # type: ignore[import-not-found,unused-ignore]

        return cast("_Decompressor", lz4.frame.LZ4FrameDecompressor())
    for _, kind, make in _COMPRESSED:
        if kind is fmt:
            return make()
    raise ValueError(f"{fmt} is not a compressed format")


def _decompress_head(head: bytes, fmt: Format) -> bytes:
    """The first bytes of a compressed stream (empty when they cannot be had)."""
    if head[:4] == b"ZF0x":
        head = head[max(head.find(b"x", 4), 0):]
    try:
        inner = _inflate(decompressor(fmt), head)
    except ImportError:
        return b""
    return inner or b""


def _inflate(stream: _Decompressor, head: bytes) -> bytes | None:
    """Up to 64 bytes out of ``head``; None when it is not a valid start of a stream."""
    try:
        return bytes(stream.decompress(head, 64))
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError, RuntimeError):
        return None


def _zlib() -> _Decompressor:
    return zlib.decompressobj()


def _gzip() -> _Decompressor:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)


def _lzma_alone() -> _Decompressor:
    return lzma.LZMADecompressor(lzma.FORMAT_ALONE)


def _xz() -> _Decompressor:
    return lzma.LZMADecompressor(lzma.FORMAT_XZ)


_LZ4_MAGIC = b"\x04\x22\x4d\x18"  # an LZ4 frame (joblib's compress='lz4')
_COMPRESSED: tuple[tuple[bytes, Format, Callable[[], _Decompressor]], ...] = (
    (b"\x1f\x8b", Format.GZIP, _gzip),
    (b"BZh", Format.BZ2, bz2.BZ2Decompressor),
    (b"\xfd7zXZ\x00", Format.XZ, _xz),
    (b"\x5d\x00\x00", Format.LZMA, _lzma_alone),
    (b"\x78", Format.ZLIB, _zlib),
)


def _starts_like_pickle(data: bytes) -> bool:
    """A PROTO opcode (protocols 2-5 always write one; unpicklers accept 0-5)."""
    return len(data) > 1 and data[0] == 0x80 and data[1] <= 5


def _parses_as_pickle(data: Buffer, size: int) -> bool:
    """Walk the opcodes (never executing them) of a headerless protocol 0/1 stream.

    True when the walk reaches STOP, or, in a file larger than the probe window, parses
    cleanly through most of the window (the window may cut the last opcode).
    """
    window = data[:_PICKLE_PROBE]
    last = 0
    try:
        for opcode, _, pos in pickletools.genops(io.BytesIO(window)):
            last = pos or 0
            if opcode.name == "STOP":
                return True
    except (ValueError, UnicodeDecodeError, struct.error):
        pass
    return size > len(window) and last > len(window) // 2


def _is_onnx(data: Buffer, size: int) -> bool:
    """Walk the top-level protobuf fields: all must be ModelProto fields, a graph present.

    Only tags and lengths are read; length-delimited bodies are skipped, so a multi-GB
    model costs a handful of reads.
    """
    seen: set[int] = set()
    pos = 0
    while pos < size:
        buf = data[pos:pos + 20]
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
