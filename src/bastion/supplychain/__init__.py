"""Artifact security: scan model files without loading them; sign, verify and list them.

``scan_path(paths)`` returns a :class:`ScanResult` (findings, errors and skipped files
kept apart); ``clear_for_loading(path)`` is the gate every pickle-based loader calls
first, raising ``UnsafeArtifactError`` unless the file is clear. ``sign``/``verify`` use
the OpenSSF model-signing format; ``build_bom`` writes a CycloneDX 1.6 ML-BOM. The pickle
analyser and the allowlist it judges imports against are in ``pickle_analysis`` and
``allowlist``.
"""

from bastion.supplychain._archives import Limits
from bastion.supplychain.bom import build_bom
from bastion.supplychain.scanner import (
    FileError,
    ScannedFile,
    ScanResult,
    SkippedFile,
    clear_for_loading,
    scan_path,
)
from bastion.supplychain.signing import Verification, sign, verify

__all__ = [
    "FileError",
    "Limits",
    "ScanResult",
    "ScannedFile",
    "SkippedFile",
    "Verification",
    "build_bom",
    "clear_for_loading",
    "scan_path",
    "sign",
    "verify",
]
