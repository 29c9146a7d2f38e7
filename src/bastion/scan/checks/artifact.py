"""``artifact-integrity``: what the model file is, by content, and who may change it.

Severity thresholds:

- critical: the file is world-writable (anyone on the host can swap the model);
- high: the format can run code when loaded (pickle, legacy or zip ``torch.save``,
  joblib) — scan it with ``bastion artifact scan`` and convert it to a safe format;
- medium: its folder is world-writable without the sticky bit (the file can be
  replaced), or the suffix promises another format than the content;
- low: the file is group-writable;
- info: the file's identity (SHA-256, size, format) for the record.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bastion.formats import PICKLE_FORMATS, Format, detect_format, sha256_file, suffix_mismatch
from bastion.report.finding import Finding, Metric, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

__all__ = ["ArtifactIntegrity"]

_CODE_ON_LOAD = PICKLE_FORMATS | {Format.TORCH_ZIP}


@CHECKS.register("artifact-integrity")
@dataclass(frozen=True, kw_only=True)
class ArtifactIntegrity:
    """Identity, format and permissions of the model file."""

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
        fmt = detect_format(path)
        info = path.stat()
        where = str(path)
        findings = [self._finding(
            "identity", f"Model file is {fmt.value}, {info.st_size} bytes", Severity.INFO,
            location=where, evidence={"sha256": sha256_file(path), "format": fmt.value},
            metrics=[Metric(name="size", value=info.st_size, unit="bytes")],
            description="Record this hash: a later scan that shows another one means the "
                        "file changed.",
            recommendation="Sign the file (bastion artifact sign) and verify it before "
                           "each deployment.",
        )]
        if fmt in _CODE_ON_LOAD:
            findings.append(self._finding(
                "code-on-load", f"The {fmt.value} format can run code when loaded",
                Severity.HIGH, location=where, evidence={"format": fmt.value},
                description="Unpickling executes whatever the file says; a tampered model "
                            "file is remote code execution on every host that loads it.",
                recommendation="Run `bastion artifact scan` on it and re-save the weights as "
                               "safetensors or ONNX.",
            ))
        mismatch = suffix_mismatch(path, fmt)
        if mismatch:
            findings.append(self._finding(
                "suffix-mismatch", "The file name promises another format than its content",
                Severity.MEDIUM, location=where, description=mismatch,
                evidence={"format": fmt.value, "suffix": path.suffix},
                recommendation="Rename the file to match its content, and find out why it "
                               "was disguised.",
            ))
        findings.extend(self._permissions(path))
        return findings

    def _permissions(self, path: Path) -> list[Finding]:
        mode = path.stat().st_mode
        parent = path.resolve().parent.stat().st_mode
        found: list[Finding] = []
        octal = {"mode": oct(stat.S_IMODE(mode))}
        if mode & stat.S_IWOTH:
            found.append(self._finding(
                "world-writable", "Anyone on this host can overwrite the model file",
                Severity.CRITICAL, location=str(path), evidence=octal,
                recommendation=f"chmod o-w {path}; keep model files read-only for the "
                               "service user.",
            ))
        elif mode & stat.S_IWGRP:
            found.append(self._finding(
                "group-writable", "The model file's group can overwrite it", Severity.LOW,
                location=str(path), evidence=octal,
                recommendation=f"chmod g-w {path} unless the group is only the deployer.",
            ))
        if parent & stat.S_IWOTH and not parent & stat.S_ISVTX:
            found.append(self._finding(
                "folder-world-writable", "Anyone can replace files in the model's folder",
                Severity.MEDIUM, location=str(path.resolve().parent),
                evidence={"mode": oct(stat.S_IMODE(parent))},
                recommendation="Remove world write access from the folder (chmod o-w) or "
                               "set the sticky bit.",
            ))
        return found
