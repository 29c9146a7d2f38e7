"""``pii``: personal data in the training data, which a model can memorise and leak.

When the training data came from a text, JSONL, CSV or Parquet file, the file itself
is audited (the numeric arrays a model sees have lost the text); findings per entity type
carry the HIPAA / GDPR / CCPA categories, the columns and masked examples only. Feature
names that announce identifiers (``ssn``, ``email``, ``dob``) are reported too, since a
model trained on them has them in its inputs. A model that memorised such records can
give them away to membership inference and inversion (OWASP ML03, ML04).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bastion.privacy.audit import ATLAS, OWASP, audit, categories_of, name_hint
from bastion.report.finding import Finding, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

__all__ = ["PiiCheck"]

_SUFFIXES = {".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq", ".txt"}


@CHECKS.register("pii")
@dataclass(frozen=True, kw_only=True)
class PiiCheck:
    """Identifiers in the training file and in its feature names."""

    name: ClassVar[str] = "pii"
    title: ClassVar[str] = "Personal data in the training data"
    owasp: ClassVar[tuple[str, ...]] = OWASP
    atlas: ClassVar[tuple[str, ...]] = ATLAS
    needs: ClassVar[tuple[Need, ...]] = ("train-file",)
    threshold: float = 0.5

    def applies(self, target: Target) -> bool:
        return _auditable(_source(target)) or bool(self._named(target))

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        found: list[Finding] = []
        source = _source(target)
        if source is not None and _auditable(source):
            found += audit(source, threshold=self.threshold, progress=ctx.progress).findings()
        named = self._named(target)
        if named:
            found.append(
                Finding(
                    id="pii/feature-names",
                    check=self.name,
                    title=f"{len(named)} features are named like personal identifiers",
                    severity=Severity.MEDIUM,
                    description=(
                        "The model takes these columns as inputs; if they hold what their "
                        "names say, it can memorise and leak them."
                    ),
                    owasp=list(self.owasp),
                    atlas=list(self.atlas),
                    evidence={
                        "features": named,
                        "categories": {n: categories_of(e) for n, e in named.items()},
                    },
                    recommendation=(
                        "Drop identifier columns before training, or pseudonymize them "
                        "(bastion privacy anonymize)."
                    ),
                )
            )
        return found

    @staticmethod
    def _named(target: Target) -> dict[str, str]:
        """Feature names that announce an identifier, with the entity type each names."""
        names = target.train.feature_names if target.train is not None else ()
        return {n: e for n in names if (e := name_hint(n)) is not None}


def _source(target: Target) -> Path | None:
    """The training file: as given on the command line, or the one the arrays came from."""
    if target.train_file is not None:
        return target.train_file
    return target.train.path if target.train is not None else None


def _auditable(path: Path | None) -> bool:
    """A file whose text the PII audit can read (arrays in .npz have lost it)."""
    return path is not None and path.suffix.lower() in _SUFFIXES
