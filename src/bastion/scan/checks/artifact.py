"""``artifact-integrity``: what the model file is, by content, and who may change it.

The model may be one file or a folder (a TensorFlow SavedModel, weights next to a
config); a folder's identity is the SHA-256 of its manifest (each file's relative
path and SHA-256, sorted), so any change to any file changes it.

Severity thresholds:

- critical: a model file is world-writable (anyone on the host can swap the model);
- high: a file's format can run code when loaded (pickle, legacy or zip
  ``torch.save``, joblib) — scan it with ``bastion artifact scan`` and convert it to a
  safe format;
- medium: a folder holding the model is world-writable without the sticky bit (its
  files can be replaced), or a file's suffix promises another format than its content;
- low: a model file or its folder is group-writable;
- info: the model's identity (SHA-256, size, format, whether the suffix agrees).
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bastion.formats import (
    COMPRESSED_FORMATS,
    PICKLE_FORMATS,
    Format,
    detect_format,
    sha256_file,
    suffix_mismatch,
)
from bastion.report.finding import Finding, Metric, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

__all__ = ["ArtifactIntegrity"]

# A compressed stream counts too: joblib compresses pickles, and a missing decompressor
# must not make one look harmless.
_CODE_ON_LOAD = PICKLE_FORMATS | COMPRESSED_FORMATS | {Format.TORCH_ZIP}
_TOP = 20


def _files(path: Path) -> list[Path]:
    """The model's files: the file itself, or every regular file under the folder."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _digest(path: Path, files: list[Path], hashes: list[str]) -> str:
    if not path.is_dir():
        return hashes[0]
    manifest = "".join(f"{f.relative_to(path).as_posix()}\0{h}\n"
                       for f, h in zip(files, hashes, strict=True))
    return hashlib.sha256(manifest.encode()).hexdigest()


@CHECKS.register("artifact-integrity")
@dataclass(frozen=True, kw_only=True)
class ArtifactIntegrity:
    """Identity, format and permissions of the model file or folder."""

    name: ClassVar[str] = "artifact-integrity"
    title: ClassVar[str] = "Model file integrity"
    owasp: ClassVar[tuple[str, ...]] = ("ML06",)
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0010.003", "AML.T0011.000")
    needs: ClassVar[tuple[Need, ...]] = ("model-file",)

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)

    def _finding(self, slug: str, title: str, severity: Severity, **kw: object) -> Finding:
        return Finding(id=f"{self.name}/{slug}", check=self.name, title=title,
                       severity=severity, owasp=list(self.owasp), atlas=list(self.atlas),
                       **kw)

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        path = target.model_path
        assert path is not None  # applies() guarantees it
        files = _files(path)
        formats = [detect_format(f) for f in files]
        mismatches = [(f, m) for f, fmt in zip(files, formats, strict=True)
                      if (m := suffix_mismatch(f, fmt))]
        size = sum(f.stat().st_size for f in files)
        fmt = detect_format(path) if path.is_dir() else formats[0]
        findings = [self._finding(
            "identity", f"Model is {fmt.value}, {size} bytes", Severity.INFO,
            location=str(path),
            evidence={"sha256": _digest(path, files, [sha256_file(f) for f in files]),
                      "format": fmt.value, "suffix": path.suffix,
                      "suffix_agrees": not mismatches, "files": len(files)},
            metrics=[Metric(name="size", value=size, unit="bytes"),
                     Metric(name="files", value=len(files), unit="files")],
            description="Record this hash: a later scan that shows another one means the "
                        "model changed.",
            recommendation="Sign the model (bastion artifact sign) and verify it before "
                           "each deployment.",
        )]
        risky = [(f, fmt) for f, fmt in zip(files, formats, strict=True) if fmt in _CODE_ON_LOAD]
        if risky:
            kinds = sorted({fmt.value for _, fmt in risky})
            findings.append(self._finding(
                "code-on-load", f"The {' and '.join(kinds)} format can run code when loaded",
                Severity.HIGH, location=str(risky[0][0]),
                evidence={"formats": kinds, "files": self._names(path, [f for f, _ in risky])},
                description="Unpickling executes whatever the file says; a tampered model "
                            "file is remote code execution on every host that loads it.",
                recommendation="Run `bastion artifact scan` on it and re-save the weights as "
                               "safetensors or ONNX.",
            ))
        if mismatches:
            findings.append(self._finding(
                "suffix-mismatch", "A file name promises another format than its content",
                Severity.MEDIUM, location=str(mismatches[0][0]),
                description="; ".join(m for _, m in mismatches[:3]),
                evidence={"files": self._names(path, [f for f, _ in mismatches])},
                recommendation="Rename the file to match its content, and find out why it "
                               "was disguised.",
            ))
        findings.extend(self._file_permissions(path, files))
        findings.extend(self._folder_permissions(path, files))
        return findings

    @staticmethod
    def _names(root: Path, files: list[Path]) -> list[str]:
        return [str(f.relative_to(root)) if root.is_dir() else str(f) for f in files[:_TOP]]

    def _file_permissions(self, root: Path, files: list[Path]) -> list[Finding]:
        modes = {f: f.stat().st_mode for f in files}
        world = [f for f, m in modes.items() if m & stat.S_IWOTH]
        group = [f for f, m in modes.items() if m & stat.S_IWGRP and not m & stat.S_IWOTH]
        found: list[Finding] = []
        if world:
            found.append(self._finding(
                "world-writable", "Anyone on this host can overwrite the model",
                Severity.CRITICAL, location=str(world[0]),
                evidence={"files": self._names(root, world),
                          "mode": oct(stat.S_IMODE(modes[world[0]]))},
                recommendation=f"chmod o-w {world[0]}; keep model files read-only for the "
                               "service user.",
            ))
        if group:
            found.append(self._finding(
                "group-writable", "The model file's group can overwrite it", Severity.LOW,
                location=str(group[0]),
                evidence={"files": self._names(root, group),
                          "mode": oct(stat.S_IMODE(modes[group[0]]))},
                recommendation=f"chmod g-w {group[0]} unless the group is only the deployer.",
            ))
        return found

    def _folder_permissions(self, root: Path, files: list[Path]) -> list[Finding]:
        folders = sorted({root.resolve().parent} | {f.resolve().parent for f in files})
        modes = {d: d.stat().st_mode for d in folders}
        # With the sticky bit only a file's owner may rename or delete it.
        world = [d for d, m in modes.items() if m & stat.S_IWOTH and not m & stat.S_ISVTX]
        group = [d for d, m in modes.items()
                 if m & stat.S_IWGRP and not m & stat.S_IWOTH and not m & stat.S_ISVTX]
        found: list[Finding] = []
        if world:
            found.append(self._finding(
                "folder-world-writable", "Anyone can replace files in the model's folder",
                Severity.MEDIUM, location=str(world[0]),
                evidence={"folders": [str(d) for d in world[:_TOP]],
                          "mode": oct(stat.S_IMODE(modes[world[0]]))},
                recommendation=f"chmod o-w {world[0]} (or set the sticky bit with chmod +t).",
            ))
        if group:
            found.append(self._finding(
                "folder-group-writable", "The model folder's group can replace its files",
                Severity.LOW, location=str(group[0]),
                evidence={"folders": [str(d) for d in group[:_TOP]],
                          "mode": oct(stat.S_IMODE(modes[group[0]]))},
                recommendation=f"chmod g-w {group[0]} unless the group is only the deployer.",
            ))
        return found
