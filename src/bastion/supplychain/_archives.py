"""Archives: zip (PyTorch, TorchScript, npz, Keras v3, plain), tar, and compressed streams.

Only the central directory is trusted for listing; members are read from their local
headers without CRC checks (as torch's reader does) and decompressed with a hard cap,
so a bomb is a finding rather than an outage. Tensor payloads (``<archive>/data/N``)
are never read. Large members spill to a temporary file and are memory-mapped.
"""

from __future__ import annotations

import itertools
import json
import lzma
import mmap
import posixpath
import re
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from bastion.formats import Format, decompressor, zip_kind
from bastion.report.finding import Severity
from bastion.supplychain._graphs import scan_keras_config
from bastion.supplychain._issue import Issue

__all__ = ["Limits", "decompressed", "scan_tar", "scan_zip"]

# scan_member(data, member_name, depth) -> (format, issues)
ScanMember = Callable[[Any, str, int], tuple[str, list[Issue]]]
_TORCH_ARCHIVES = (Format.TORCH_ZIP, Format.TORCHSCRIPT)

_SPILL = 64 << 20
_TENSOR_PAYLOAD = re.compile(r"(?:^|/)(?:data|\.data)/\d+$|(?:^|/)\.data/")
_TS_ALLOWED = re.compile(r"__torch__\..*|torch\.jit\._pickle\.(?:build_\w+|restore_type_tag)")
_TS_OP = re.compile(rb"\bops\.([A-Za-z_]\w*)\.")
_TS_NAMESPACES = frozenset({b"aten", b"prim", b"quantized", b"profiler", b"_caffe2", b"_quantized"})


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds that keep a scan's memory, disk and time finite on hostile input."""

    max_ratio: int = 200  # decompressed/compressed size beyond which a member is a bomb
    max_member_bytes: int = 8 << 30  # largest member or stream that is decompressed
    max_entries: int = 100_000  # archive entries listed
    max_depth: int = 3  # nested archives followed


def _issue(rule: str, severity: Severity, title: str, detail: str, subject: str) -> Issue:
    return Issue(rule, severity, title, detail, subject)


def _unsafe_name(name: str) -> bool:
    """Absolute (``/x``, ``\\x``, ``C:x``) or climbing (a ``..`` component)."""
    if name.startswith(("/", "\\")) or name[1:2] == ":":
        return True
    return ".." in name and ".." in name.replace("\\", "/").split("/")


def scan_zip(
    fileobj: IO[bytes], scan_member: ScanMember, depth: int, limits: Limits
) -> tuple[Format, list[Issue]]:
    """Check a zip's directory, then scan the members that can hold code."""
    try:
        archive = zipfile.ZipFile(fileobj)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        return Format.ZIP, [_issue(
            "malformed-archive", Severity.HIGH, "Zip archive is truncated or corrupt",
            f"The archive cannot be listed ({err}); a loader may still read a part of it.",
            "zip",
        )]
    issues = _directory_issues(infos, limits)
    kind = zip_kind({i.filename for i in infos})
    for info in infos[: limits.max_entries]:
        name = info.filename
        if name.endswith("/"):
            continue
        if kind in _TORCH_ARCHIVES and _TENSOR_PAYLOAD.search(name):
            continue  # raw tensor bytes: never read
        if _unsafe_name(name):
            continue  # reported by _directory_issues; never opened
        if kind is Format.KERAS_V3 and name.endswith(".weights.h5"):
            continue  # weights only; the config names every layer
        if kind is Format.TORCHSCRIPT and name.endswith(".py"):
            issues.extend(_torchscript_code(fileobj, info, limits))
            continue
        if depth >= limits.max_depth:
            issues.append(_issue(
                "nested-too-deep", Severity.MEDIUM, "Archive nesting too deep",
                f"Member {name!r} is inside {depth} archives; it was not opened.", name,
            ))
            continue
        with _member(fileobj, info, limits) as (data, problem):
            if problem is not None:
                issues.append(problem.inside(name))
                if data is None:
                    continue
            if kind is Format.KERAS_V3 and name == "config.json":
                found = _keras_config(data)
            else:
                _, found = scan_member(data, name, depth + 1)
        if kind is Format.TORCHSCRIPT:
            found = [i for i in found if not _torchscript_builtin(i)]
        issues.extend(i.inside(name) for i in found)
    return kind, issues


def _torchscript_builtin(issue: Issue) -> bool:
    """TorchScript's C++ unpickler maps these names to compiled types, not Python imports."""
    return issue.rule in ("unknown-global", "dangerous-global") and bool(
        _TS_ALLOWED.fullmatch(issue.subject)
    )


def _keras_config(data: Any) -> list[Issue]:
    try:
        config = json.loads(bytes(data))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return [_issue("malformed-keras", Severity.MEDIUM, "Keras config.json is not JSON",
                       "The model config cannot be parsed.", "config.json")]
    return scan_keras_config(config)


def _directory_issues(infos: list[zipfile.ZipInfo], limits: Limits) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[str] = set()
    total = 0
    for info in infos[: limits.max_entries]:
        name = info.filename
        if _unsafe_name(name):
            issues.append(_issue(
                "archive-traversal", Severity.HIGH, "Archive entry escapes its folder",
                f"Entry {name!r} is absolute or climbs with '..'; extracting it writes "
                "outside the target folder.", name,
            ))
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            issues.append(_issue(
                "archive-symlink", Severity.HIGH, "Archive contains a symbolic link",
                f"Entry {name!r} is a symlink; extracting it can redirect later writes or "
                "expose host files.", name,
            ))
        if name in seen:
            issues.append(_issue(
                "duplicate-entry", Severity.HIGH, "Archive holds two entries with one name",
                f"{name!r} appears twice; different readers pick different copies, so a "
                "scanner and a loader can see different files.", name,
            ))
        seen.add(name)
        if info.file_size > (1 << 20) and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            issues.append(_issue(
                "zip-bomb", Severity.HIGH, "Archive member decompresses enormously",
                f"{name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"to {info.file_size} bytes.", name,
            ))
        total += info.file_size
    if len(infos) > limits.max_entries:
        issues.append(_issue(
            "too-many-entries", Severity.MEDIUM, "Archive has too many entries",
            f"{len(infos)} entries; only the first {limits.max_entries} were checked.", "zip",
        ))
    spans = sorted((i.header_offset, i.header_offset + 30 + i.compress_size) for i in infos)
    if any(b < e for (_, e), (b, _) in itertools.pairwise(spans)):
        issues.append(_issue(
            "overlapping-entries", Severity.HIGH, "Archive entries overlap",
            "Two entries share bytes: the signature of a non-recursive zip bomb or of a "
            "file crafted to look different to different readers.", "zip",
        ))
    return issues


@contextmanager
def _member(
    fileobj: IO[bytes], info: zipfile.ZipInfo, limits: Limits
) -> Iterator[tuple[Any, Issue | None]]:
    """A member's bytes (or an mmap of them), read from its local header with a cap."""
    fileobj.seek(info.header_offset)
    header = fileobj.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        yield None, _issue("malformed-archive", Severity.HIGH, "Zip member header is missing",
                           "The central directory points at bytes that are not a member.",
                           info.filename)
        return
    n, m = struct.unpack_from("<HH", header, 26)
    fileobj.seek(info.header_offset + 30 + n + m)
    if info.compress_type == zipfile.ZIP_STORED:
        decompress: Callable[[bytes, int], bytes] | None = None
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        decompress = zlib.decompressobj(-15).decompress
    else:
        yield None, _issue("unsupported-compression", Severity.MEDIUM,
                           "Zip member uses an unusual compression",
                           f"Method {info.compress_type} is not read by bastion (nor by torch).",
                           info.filename)
        return
    cap = min(limits.max_member_bytes, max(info.compress_size, 1) * limits.max_ratio + _SPILL)
    with _sink() as (write, result):
        crc, written, left = 0, 0, info.compress_size
        problem: Issue | None = None
        while left > 0:
            chunk = fileobj.read(min(left, 1 << 20))
            if not chunk:
                problem = _issue("malformed-archive", Severity.HIGH, "Zip member is truncated",
                                 "The member's data ends before its declared size.",
                                 info.filename)
                break
            left -= len(chunk)
            out = decompress(chunk, cap - written + 1) if decompress else chunk
            written += len(out)
            if written > cap:
                problem = _issue("zip-bomb", Severity.HIGH, "Zip member exceeds the size cap",
                                 f"Decompression passed {cap} bytes and was stopped.",
                                 info.filename)
                break
            crc = zlib.crc32(out, crc)
            write(out)
        if problem is None and crc != info.CRC:
            problem = _issue("crc-mismatch", Severity.MEDIUM, "Zip member fails its checksum",
                             "Loaders that skip CRC checks (torch) still read it; others refuse.",
                             info.filename)
        yield result(), problem


class _Spool:
    """Bytes collected in memory, moved to a memory-mapped temporary file past 64 MiB."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._file: IO[bytes] | None = None
        self._map: mmap.mmap | None = None

    def write(self, chunk: bytes) -> None:
        if self._file is None and self._size + len(chunk) > _SPILL:
            self._file = tempfile.TemporaryFile(prefix="bastion-")  # noqa: SIM115 - closed in close()
            self._file.writelines(self._parts)
            self._parts = []
        if self._file is not None:
            self._file.write(chunk)
        else:
            self._parts.append(chunk)
        self._size += len(chunk)

    def result(self) -> Any:
        if self._file is None or self._size == 0:
            return b"".join(self._parts)
        self._file.flush()
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        if self._file is not None:
            self._file.close()


@contextmanager
def _sink() -> Iterator[tuple[Callable[[bytes], Any], Callable[[], Any]]]:
    spool = _Spool()
    try:
        yield spool.write, spool.result
    finally:
        spool.close()


def _torchscript_code(fileobj: IO[bytes], info: zipfile.ZipInfo, limits: Limits) -> list[Issue]:
    """Custom op namespaces called by TorchScript code (they need a native library)."""
    with _member(fileobj, info, limits) as (data, _):
        if data is None:
            return []
        namespaces = {m.group(1) for m in _TS_OP.finditer(bytes(data[: 16 << 20]))}
    return [
        _issue("custom-operator", Severity.MEDIUM, f"TorchScript calls custom ops "
               f"torch.ops.{ns.decode()}", f"{info.filename} calls operators from namespace "
               f"{ns.decode()!r}, provided by a native library you must trust.", ns.decode())
        for ns in sorted(namespaces - _TS_NAMESPACES)
    ]


def scan_tar(
    fileobj: IO[bytes], scan_member: ScanMember, depth: int, limits: Limits
) -> list[Issue]:
    """Traversal, links and devices in a tar; regular members are scanned in turn."""
    issues: list[Issue] = []
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as archive:
            for count, member in enumerate(archive):
                if count >= limits.max_entries:
                    break
                name = member.name
                if _unsafe_name(name):
                    issues.append(_issue("archive-traversal", Severity.HIGH,
                                         "Archive entry escapes its folder",
                                         f"Entry {name!r} is absolute or climbs with '..'.", name))
                if member.issym() or member.islnk():
                    target = member.linkname
                    escapes = _unsafe_name(target) or posixpath.normpath(
                        posixpath.join(posixpath.dirname(name), target)).startswith("..")
                    issues.append(_issue(
                        "archive-symlink", Severity.HIGH if escapes else Severity.LOW,
                        "Archive contains a link", f"Entry {name!r} links to {target!r}.", name))
                elif member.isdev():
                    issues.append(_issue("archive-device", Severity.HIGH,
                                         "Archive contains a device node",
                                         f"Entry {name!r} is a device or FIFO.", name))
                elif member.isfile() and depth < limits.max_depth:
                    handle = archive.extractfile(member)
                    if handle is None:
                        continue
                    with _sink() as (write, result):
                        left = min(member.size, limits.max_member_bytes)
                        while left > 0:
                            chunk = handle.read(min(left, 1 << 20))
                            if not chunk:
                                break
                            left -= len(chunk)
                            write(chunk)
                        _, found = scan_member(result(), name, depth + 1)
                    issues.extend(i.inside(name) for i in found)
    except (tarfile.TarError, OSError, EOFError) as err:
        issues.append(_issue("malformed-archive", Severity.HIGH, "Tar archive is corrupt",
                             f"The archive cannot be read to the end ({err}).", "tar"))
    return issues


_CHUNK = 64 << 10  # compressed bytes per step: one step inflates to at most ~64 MiB


@contextmanager
def decompressed(
    fileobj: IO[bytes], fmt: Format, compressed_size: int, limits: Limits
) -> Iterator[tuple[Any, Issue | None]]:
    """The decompressed content of a compressed stream, capped like a zip member.

    An lz4 stream without the ``lz4`` package is a finding (its content is unchecked),
    never a silent skip.
    """
    head = fileobj.read(32)
    # joblib < 0.10 writes 'ZF0x<length>' and padding before the zlib stream
    fileobj.seek(max(head.find(b"x", 4), 0) if head[:4] == b"ZF0x" else 0)
    try:
        decoder = decompressor(fmt)
    except ImportError:
        yield b"", _issue(
            "unscanned-compression", Severity.MEDIUM, f"{fmt} stream not scanned",
            f"The file is compressed with {fmt}: install bastion-ml[supplychain] to scan "
            "it. Until then its content (joblib writes a pickle) is unchecked.", str(fmt))
        return
    cap = min(limits.max_member_bytes, max(compressed_size, 1) * limits.max_ratio + _SPILL)
    with _sink() as (write, result):
        written = 0
        problem: Issue | None = None
        try:
            while True:
                chunk = fileobj.read(_CHUNK)
                if not chunk:
                    break
                out = decoder.decompress(chunk)
                written += len(out)
                if written > cap:
                    problem = _issue("zip-bomb", Severity.HIGH, "Compressed stream exceeds the cap",
                                     f"Decompression passed {cap} bytes and was stopped.", fmt)
                    break
                write(out)
                if getattr(decoder, "eof", False):
                    break
        except (zlib.error, OSError, EOFError, lzma.LZMAError, RuntimeError) as err:
            problem = _issue("malformed-archive", Severity.HIGH, f"{fmt} stream is corrupt",
                             f"Decompression failed: {err}.", fmt)
        if problem is None and not decoder.eof:  # lz4 holds back a cut block entirely
            problem = _issue("malformed-archive", Severity.HIGH, f"{fmt} stream is truncated",
                             "The stream ends before its end marker: part of it was not "
                             "seen by this scan.", fmt)
        yield result(), problem
