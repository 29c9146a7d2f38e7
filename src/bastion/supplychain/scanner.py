"""Scan model files and folders without loading them: findings, errors and skips apart.

:func:`scan_path` walks files and folders (recursively, symlinks not followed), detects
each file's format from its content, and runs the matching analysis. Every file gets
exactly one outcome: scanned (with zero or more findings), an error (it could not be
looked at), or skipped (nothing to analyse, and why). :func:`clear_for_loading` is the
gate model loaders call before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.errors import InputNotFoundError, UnsafeArtifactError
from bastion.formats import (
    CODE_FORMATS,
    COMPRESSED_FORMATS,
    PICKLE_SUFFIXES,
    SUFFIX_FORMATS,
    TEXT_SUFFIXES,
    Format,
    detect_content,
    sniff,
    suffix_mismatch,
)
from bastion.progress import ProgressSink, emit
from bastion.report.finding import Finding, Severity
from bastion.supplychain._archives import Limits, decompressed, scan_tar, scan_zip
from bastion.supplychain._graphs import scan_keras_h5, scan_onnx, scan_savedmodel
from bastion.supplychain._headers import (
    CannotScan,
    scan_gguf,
    scan_npy,
    scan_safetensors,
    scan_tokenizer_config,
)
from bastion.supplychain._issue import Issue
from bastion.supplychain.pickle_analysis import analyse_pickle
from bastion.supplychain.secrets import MAX_TEXT_BYTES, available, find_secrets

__all__ = [
    "ATLAS",
    "OWASP",
    "FileError",
    "Limits",
    "ScanResult",
    "ScannedFile",
    "SkippedFile",
    "clear_for_loading",
    "scan_path",
]

OWASP = ("ML06",)
ATLAS = ("AML.T0010", "AML.T0010.003", "AML.T0058")
_CODE_RULES = frozenset({
    "dangerous-global", "unknown-global", "dynamic-import", "dynamic-attribute",
    "call-computed", "build-on-global", "extension-code", "nested-pickle-opaque",
    "keras-lambda", "keras-custom-object", "tensorflow-op", "template-injection",
})
_SECRET_ATLAS = ["AML.T0055"]  # Unsecured Credentials
_READ_WHOLE = 1 << 20  # files up to this size are read, larger ones memory-mapped
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".lzma", ".lz4", ".z")
_NOT_MODELS = {
    Format.TFLITE: "TFLite flatbuffer: holds no code, not analysed",
    Format.PARQUET: "Parquet table: holds no code, not analysed",
    Format.UNKNOWN: "unknown binary format",
}

_RECOMMEND = {
    "dangerous-global": "Do not load this file. Get the model from its publisher again, "
    "or as safetensors/ONNX; load pickles only from sources you trust.",
    "unknown-global": "Check that the named class comes from a library you trust, then "
    "pass --trust for this file, or convert the model to safetensors/ONNX.",
    "malformed-pickle": "Re-export the file; a stream that does not parse cannot be cleared.",
    "zip-bomb": "Do not extract this archive; ask the publisher for a well-formed copy.",
}
_DEFAULT_RECOMMEND = "Do not load this file until you have checked it; prefer data-only " \
    "formats (safetensors, ONNX without custom ops)."


class _Skip(Exception):
    """Nothing here to analyse; the reason says why."""


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """A file that was analysed: its detected format and size (sha256 when asked for)."""

    path: str
    format: str
    size_bytes: int
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that could not be looked at; it is not known to be safe."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file with nothing to analyse (empty, text, unknown format), and why."""

    path: str
    reason: str


@dataclass
class ScanResult:
    """Everything one scan saw. A file is *clear* only if it was scanned without findings
    at or above LOW and without errors."""

    files: list[ScannedFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity >= threshold]

    @property
    def clear(self) -> bool:
        return bool(self.files) and not self.errors and not self.skipped and \
            not self.at_or_above(Severity.LOW)


def scan_path(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    progress: ProgressSink | None = None,
    limits: Limits | None = None,
    hashes: bool = False,
) -> ScanResult:
    """Scan files and folders (recursively); raises ``InputNotFoundError`` for a missing path.

    ``hashes`` adds each scanned file's sha256 (one more full read per file).
    """
    roots = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    for root in roots:
        if not os.path.lexists(root):
            raise InputNotFoundError(f"{root} does not exist: check the path")
    limits = limits or Limits()
    result = ScanResult()
    targets = [item for root in roots for item in _walk(root, result)]
    for done, (path, regular) in enumerate(targets, 1):
        _scan_file(path, regular, result, limits, hashes)
        if progress is not None:
            emit(progress, "artifact scan", done, len(targets), message=os.path.basename(path))
    return result


def _walk(root: Path, result: ScanResult) -> Iterator[tuple[str, bool]]:
    """(file, is it a regular file) under ``root`` in a stable order; symlinks inside a
    folder are reported, never followed."""
    if not os.path.isdir(root):
        yield str(root), os.path.isfile(root)
        return
    stack = [str(root)]
    base = root.resolve()
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            result.errors.append(
                FileError(_display(folder), f"cannot list folder: {err.strerror}"))
            continue
        subdirs = []
        for entry in entries:
            if entry.is_symlink():
                _symlink(Path(entry.path), base, result)
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
            else:
                yield entry.path, entry.is_file(follow_symlinks=False)
        stack.extend(reversed(subdirs))


def _symlink(path: Path, base: Path, result: ScanResult) -> None:
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        result.skipped.append(SkippedFile(_display(str(path)), "symlink loop: points nowhere"))
        return
    if target.is_relative_to(base):
        result.skipped.append(
            SkippedFile(_display(str(path)), _display(f"symlink to {target}, scanned there")))
        return
    result.files.append(ScannedFile(_display(str(path)), "symlink", 0))
    result.findings.append(_finding(str(path), Issue(
        "symlink-escape", Severity.HIGH, "Symlink points outside the scanned folder",
        f"{path.name} links to {target}; a loader follows it to a file this scan did not "
        "cover.", str(target),
    )))


def _display(text: str) -> str:
    """A path or name fit for a report: undecodable bytes from the file system as escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _scan_file(
    path: str, regular: bool, result: ScanResult, limits: Limits, hashes: bool
) -> None:
    where = _display(path)
    if not regular and os.path.exists(path):  # never open a FIFO: it would block
        result.skipped.append(SkippedFile(where, "not a regular file (device, FIFO or socket)"))
        return
    try:
        # A descriptor, not a buffered file object: opening costs a third of a small scan.
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size <= _READ_WHOLE:  # one read is cheaper than mapping a small file
                fmt, issues, digest = _analyse(_read(fd, size), path, limits, hashes)
            else:  # never read whole: only the parts an analysis asks for are paged in
                with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
                    fmt, issues, digest = _analyse(mm, path, limits, hashes)
        finally:
            os.close(fd)
    except _Skip as skip:
        result.skipped.append(SkippedFile(where, str(skip)))
        return
    except CannotScan as err:
        result.errors.append(FileError(where, str(err)))
        return
    except OSError as err:
        result.errors.append(FileError(where, f"cannot read: {err.strerror or err}"))
        return
    result.files.append(ScannedFile(where, fmt, size, digest))
    if issues:
        result.findings.extend(_finding(where, i) for i in issues)


def _analyse(data: Any, path: str, limits: Limits, hashes: bool) -> tuple[str, list[Issue], str]:
    """(format, issues, sha256 or "") of a whole file's bytes."""
    fmt, issues = _scan_blob(data, os.path.basename(path), 0, limits, path)
    return fmt, issues, hashlib.sha256(data).hexdigest() if hashes else ""


def _read(fd: int, size: int) -> bytes:
    """A small file's ``size`` bytes (fewer if it shrank while being read)."""
    parts = [os.read(fd, size)]
    got = len(parts[0])
    while 0 < got < size:
        more = os.read(fd, size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _scan_blob(
    data: Any, name: str, depth: int, limits: Limits, path: str | None = None
) -> tuple[str, list[Issue]]:
    """Detect and analyse one file or archive member; raises _Skip or CannotScan."""
    if not len(data):
        raise _Skip("empty file (0 bytes)")
    suffix = os.path.splitext(name)[1].lower()
    fmt = sniff(data) or detect_content(data, suffix)
    if fmt is Format.CSV:
        fmt = Format.TEXT  # for this scanner a table is text: searched for secrets
    if (fmt in (Format.TEXT, Format.UNKNOWN) and suffix in PICKLE_SUFFIXES) or \
            (fmt is Format.TEXT and suffix in TEXT_SUFFIXES and
             detect_content(data) is Format.PICKLE):
        # a pickle suffix on unknown content, or a protocol-0 pickle named like text
        fmt = Format.PICKLE
    issues: list[Issue] = []

    def member(inner: Any, inner_name: str, inner_depth: int) -> tuple[str, list[Issue]]:
        try:
            return _scan_blob(inner, inner_name, inner_depth, limits)
        except _Skip:
            return "skipped", []
        except CannotScan as err:
            return "error", [Issue("member-not-scanned", Severity.MEDIUM,
                                   "Archive member could not be scanned", str(err), inner_name)]

    if fmt is Format.PICKLE or fmt is Format.JOBLIB:
        issues += _pickle(data)
    elif fmt is Format.TORCH_LEGACY:
        found = analyse_pickle(data, max_pickles=5)
        issues += found.issues + _incomplete(found.complete)
    elif fmt is Format.ZIP:
        with _open(data, path) as fh:
            fmt, issues = scan_zip(fh, member, depth, limits)
    elif fmt is Format.TAR:
        with _open(data, path) as fh:
            issues += scan_tar(fh, member, depth, limits)
    elif fmt in COMPRESSED_FORMATS:
        issues += _compressed(data, fmt, name, depth, limits, path, member)
    elif fmt is Format.NUMPY_NPY:
        issues += scan_npy(data)
    elif fmt is Format.SAFETENSORS:
        issues += scan_safetensors(data)
    elif fmt is Format.GGUF:
        issues += scan_gguf(data)
    elif fmt is Format.HDF5:
        fmt = detect_content(data, suffix)  # a Keras model or plain HDF5, for the report
        issues += scan_keras_h5(path if path is not None else data)
    elif fmt is Format.ONNX or (fmt is Format.UNKNOWN and suffix == ".onnx"):
        fmt = Format.ONNX  # a model named .onnx that does not parse is a finding there
        issues += scan_onnx(data)
    elif fmt is Format.UNKNOWN and name.endswith("saved_model.pb"):
        fmt = Format.TF_SAVEDMODEL
        issues += scan_savedmodel(data)
    elif fmt is Format.TEXT:
        return fmt.value, _text(data, name, path, _mismatch(fmt, name, suffix))
    else:
        raise _Skip(_NOT_MODELS.get(fmt, f"{fmt} file: not analysed"))
    return fmt.value, _mismatch(fmt, name, suffix) + issues


def _text(data: Any, name: str, path: str | None, issues: list[Issue]) -> list[Issue]:
    """Configs, notebooks and model cards: chat templates and secrets; a skip when there
    is nothing to report."""
    if name == "tokenizer_config.json":
        issues = issues + scan_tokenizer_config(data)
    if path is not None and len(data) <= MAX_TEXT_BYTES and available():
        return issues + find_secrets(Path(path))
    if issues:
        return issues
    raise _Skip("text file, not a model format" if len(data) <= MAX_TEXT_BYTES
                else "text file over 1 MiB: not searched for secrets")


def _pickle(data: Any) -> list[Issue]:
    """A plain pickle; joblib's layout is followed, and the plain reading is checked too."""
    found = analyse_pickle(data, joblib=True)
    issues = found.issues + _incomplete(found.complete)
    if "joblib.numpy_pickle.NumpyArrayWrapper" in found.imports:
        # pickle.load on this file would run the bytes joblib treats as array data.
        seen = {(i.rule, i.subject) for i in issues}
        plain = analyse_pickle(data)
        issues += [i for i in plain.issues if i.rule not in ("malformed-pickle", "trailing-data")
                   and (i.rule, i.subject) not in seen]
    return issues


def _incomplete(complete: bool) -> list[Issue]:
    if complete:
        return []
    return [Issue("analysis-limit", Severity.HIGH, "Pickle too large to analyse fully",
                  "The opcode budget ran out before the end of the stream; the rest was not "
                  "checked.", "pickle")]


def _compressed(
    data: Any, fmt: Format, name: str, depth: int, limits: Limits, path: str | None, member: Any,
) -> list[Issue]:
    if depth >= limits.max_depth:
        return [Issue("nested-too-deep", Severity.MEDIUM, "Compression nested too deep",
                      f"{fmt} stream inside {depth} containers was not opened.", fmt)]
    inner_name = name.rsplit(".", 1)[0] if name.lower().endswith(_COMPRESSED_SUFFIXES) \
        else name
    with _open(data, path) as fh, decompressed(fh, fmt, len(data), limits) as (inner, problem):
        issues = [problem] if problem is not None else []
        if len(inner):
            _, found = member(inner, inner_name, depth + 1)
            issues += found
    return issues


@contextmanager
def _open(data: Any, path: str | None) -> Iterator[Any]:
    """A seekable binary file over ``data`` (the file itself when there is one)."""
    if path is not None:
        with open(path, "rb") as fh:
            yield fh
    else:
        yield io.BytesIO(data) if isinstance(data, bytes) else _MapFile(data)


class _MapFile:
    """A read-only file view of an mmap (zipfile and tarfile need read/seek/tell)."""

    def __init__(self, mm: mmap.mmap) -> None:
        self._mm = mm
        self._mm.seek(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mm, name)

    def seekable(self) -> bool:
        return True


def _mismatch(fmt: Format, name: str, suffix: str) -> list[Issue]:
    """A name that promises a data-only format (.safetensors, .npy, .json...) on other
    content; names that promise a pickle already say that loading may run code."""
    promised = SUFFIX_FORMATS.get(suffix)
    if promised is None or promised & CODE_FORMATS or fmt is Format.UNKNOWN:
        return []
    line = suffix_mismatch(name, fmt)
    if line is None:
        return []
    code = fmt in CODE_FORMATS
    return [Issue(
        "format-mismatch", Severity.HIGH if code else Severity.MEDIUM,
        f"{suffix} file is really {fmt}",
        f"The file is {line}"
        + ("; a loader that trusts the suffix's safety could run code." if code else "."),
        f"{suffix}->{fmt}",
    )]


def _finding(path: str, issue: Issue) -> Finding:
    """An issue as a report Finding; ids are stable per rule, subject and place."""
    location = _display(f"{path}!{issue.member}" if issue.member else path)
    place = hashlib.sha1(location.encode(), usedforsecurity=False).hexdigest()[:8]
    subject = _display(issue.subject[:80]) or issue.rule
    if issue.rule == "secret":
        atlas = list(_SECRET_ATLAS)
    else:
        atlas = list(ATLAS) + (["AML.T0011.000"] if issue.rule in _CODE_RULES else [])
    evidence: dict[str, Any] = {"rule": issue.rule, "subject": _display(issue.subject)}
    if issue.member:
        evidence["member"] = _display(issue.member)
    if issue.offset is not None:
        evidence["offset"] = issue.offset
    return Finding(
        id=f"supplychain/{issue.rule}/{subject}@{place}",
        check="supplychain",
        title=_display(issue.title),
        severity=issue.severity,
        description=_display(issue.detail),
        owasp=list(OWASP),
        atlas=atlas,
        evidence=evidence,
        recommendation=_RECOMMEND.get(issue.rule, _DEFAULT_RECOMMEND),
        location=location,
    )


def clear_for_loading(path: str | os.PathLike[str], *, trust: bool = False) -> ScanResult:
    """Scan one model file before it is loaded; raise ``UnsafeArtifactError`` unless clear.

    Clear means: the file was analysed as a model format (not skipped, not text, no
    error) and no finding is LOW or worse. ``trust=True`` is the user's explicit per-file
    override: the scan still runs and its result is returned for the report, but nothing
    is raised.
    """
    result = scan_path(path)
    if trust or (result.clear and all(f.format != "text" for f in result.files)):
        return result
    blocking = sorted(result.at_or_above(Severity.LOW), key=lambda f: -f.severity.rank)
    if blocking:
        worst = blocking[0]
        reason = f"{worst.severity.value}: {worst.title}"
    elif result.errors:
        reason = f"it could not be scanned ({result.errors[0].message})"
    elif result.skipped:
        reason = f"it was not analysed ({result.skipped[0].reason})"
    else:
        reason = "it is text, not a model format this scanner can clear"
    raise UnsafeArtifactError(
        f"refusing to load {path}: {reason}; run 'bastion artifact scan {path}' for details, "
        "or pass --trust for this file if you know where it came from"
    )
