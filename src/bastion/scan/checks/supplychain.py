"""The ``supplychain`` check: is the model file itself safe to load?

Runs the artifact scanner on ``Target.model_path`` (OWASP ML06 AI supply chain; ATLAS
AI supply chain compromise, its model sub-technique, and publish poisoned models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bastion.errors import UnreadableInputError, UnsupportedFormatError
from bastion.report.finding import Finding
from bastion.scan.check import CHECKS, Need, ScanContext, Target


@CHECKS.register("supplychain")
@dataclass(frozen=True, kw_only=True)
class SupplyChain:
    """Scan the model file for code that runs on load, without loading it."""

    name: ClassVar[str] = "supplychain"
    title: ClassVar[str] = "Model file safety (AI supply chain)"
    owasp: ClassVar[tuple[str, ...]] = ("ML06",)
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0010", "AML.T0010.003", "AML.T0058")
    needs: ClassVar[tuple[Need, ...]] = ("model-file",)

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        from bastion.supplychain import scan_path

        assert target.model_path is not None  # guaranteed by applies()
        result = scan_path(target.model_path, progress=ctx.progress)
        if result.errors:
            raise UnreadableInputError(f"{result.errors[0].path}: {result.errors[0].message}")
        if not result.files and result.skipped:
            raise UnsupportedFormatError(
                f"{result.skipped[0].path} was not analysed: {result.skipped[0].reason}"
            )
        return result.findings
