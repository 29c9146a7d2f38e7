"""Artifact security: scan model files without loading them.

``scan_path(paths)`` returns a :class:`ScanResult` (findings, errors and skipped files
kept apart); ``clear_for_loading(path)`` is the gate every pickle-based loader calls
first, raising ``UnsafeArtifactError`` unless the file is clear. The pickle analyser and
the allowlist it judges imports against are in ``pickle_analysis`` and ``allowlist``.
"""

from bastion.supplychain._archives import Limits
from bastion.supplychain.scanner import (
    FileError,
    ScannedFile,
    ScanResult,
    SkippedFile,
    clear_for_loading,
    scan_path,
)

__all__ = [
    "FileError",
    "Limits",
    "ScanResult",
    "ScannedFile",
    "SkippedFile",
    "clear_for_loading",
    "scan_path",
]
