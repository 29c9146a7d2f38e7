"""The ``inversion`` check: does the model give away what its classes look like, or a
sensitive column of its training records?

Model inversion (OWASP ML03; ATLAS AML.T0024.001 invert AI model) with MI-FACE
(Fredrikson et al., 2015): exact gradients when the model is differentiable, estimated
from probabilities (counted queries) otherwise. A reconstruction *identifies* its class
when it is closer (centred cosine) to that class's real mean than to any other. With
``options["sensitive_column"]`` (a column name or index) and tabular training and
held-out data, attribute inference also runs on the training records, the held-out
data serving as the attacker's own, and is compared with imputation that never
queries the model (Jayaraman and Evans, 2022).

Severity of the inversion finding, from the identification rate r against chance
c = 1 / n_classes, as the lift L = (r - c) / (1 - c), and the mean centred cosine s:

* high: L ≥ 0.7 and s ≥ 0.3 (recognisable class representatives);
* medium: L ≥ 0.4;
* low: L ≥ 0.15;
* info: reconstructions no better than chance.

Severity of the attribute finding, from the advantage A (attack accuracy minus
imputation accuracy): high A ≥ 0.20, medium A ≥ 0.10, low A ≥ 0.05, else info.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target
from bastion.typing import Differentiable

if TYPE_CHECKING:
    from bastion.attacks.inference import AttributeResult, InversionResult, ReconstructionQuality

__all__ = ["Inversion", "attribute_severity", "inversion_severity"]

_OWASP = ["ML03"]
_ATLAS = ["AML.T0024", "AML.T0024.001"]
_PROFILES: dict[str, tuple[int, int]] = {
    # profile: (descent steps, black-box gradient samples per step)
    "quick": (100, 8),
    "standard": (300, 20),
    "thorough": (1000, 50),
}
_RECOMMENDATION = (
    "Return labels or top-k classes with probabilities rounded to 1-2 decimals (the "
    "countermeasure Fredrikson et al. found effective); train with differential privacy "
    "(DP-SGD at a planned ε) and stronger regularisation so outputs depend less on "
    "individual records; rate-limit and monitor queries, since black-box inversion needs "
    "many of them."
)


def inversion_severity(quality: ReconstructionQuality, n_classes: int) -> Severity:
    """The documented severity of an inversion (see the module docstring)."""
    chance = 1.0 / n_classes
    lift = (quality.identification_rate - chance) / (1.0 - chance)
    if lift >= 0.7 and float(quality.cosine.mean()) >= 0.3:
        return Severity.HIGH
    if lift >= 0.4:
        return Severity.MEDIUM
    if lift >= 0.15:
        return Severity.LOW
    return Severity.INFO


def attribute_severity(result: AttributeResult) -> Severity:
    """The documented severity of an attribute inference (see the module docstring)."""
    for level, threshold in ((Severity.HIGH, 0.20), (Severity.MEDIUM, 0.10),
                             (Severity.LOW, 0.05)):
        if result.advantage >= threshold:
            return level
    return Severity.INFO


@CHECKS.register("inversion")
@dataclass(frozen=True, kw_only=True)
class Inversion:
    """Reconstruct class representatives; optionally infer a sensitive column."""

    name: ClassVar[str] = "inversion"
    title: ClassVar[str] = "Model inversion and attribute inference"
    owasp: ClassVar[tuple[str, ...]] = tuple(_OWASP)
    atlas: ClassVar[tuple[str, ...]] = tuple(_ATLAS)
    needs: ClassVar[tuple[Need, ...]] = ("model", "data", "labels")

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        import torch

        from bastion.attacks.inference import MIFace, reconstruction_quality

        assert target.model is not None and target.eval_data is not None  # applies()
        data = target.eval_data
        assert data.y is not None
        steps, samples = _PROFILES[ctx.profile]
        white = isinstance(target.model, Differentiable)
        attack = MIFace(steps=steps, black_box=not white, n_samples=samples,
                        lr=0.1 if white else 0.05)
        classes = np.unique(np.asarray(data.y)).astype(np.int64)
        result = attack(target.model, classes,
                        generator=torch.Generator().manual_seed(ctx.seed))
        quality = reconstruction_quality(result.reconstructions, result.classes, data.x,
                                         np.asarray(data.y))
        findings = [_inversion_finding(result, quality, target.model.n_classes, white)]
        column = ctx.options.get("sensitive_column")
        if column is not None and target.train is not None and target.test is not None:
            findings.append(_attribute_finding(target, column, ctx.seed))
        return findings


def _inversion_finding(result: InversionResult, quality: ReconstructionQuality,
                       n_classes: int, white: bool) -> Finding:
    severity = inversion_severity(quality, n_classes)
    rate = quality.identification_rate
    how = "exact gradients (white-box)" if white else (
        f"gradients estimated from {result.n_queries} probability queries (black-box)")
    return Finding(
        id="inversion/class-representatives",
        check="inversion",
        title=(f"Class representatives can be reconstructed ({rate:.0%} of classes "
               "identifiable)" if severity > Severity.INFO
               else "Reconstructed class representatives are not recognisable"),
        severity=severity,
        description=(
            f"MI-FACE reconstructed one input per class for {len(result.classes)} classes "
            f"using {how}. {int(quality.identified.sum())} reconstruction(s) are closer to "
            f"their own class's real mean than to any other (chance: {1 / n_classes:.0%}); "
            f"the model is {float(result.confidence.mean()):.0%} confident in them on "
            "average."
        ),
        owasp=_OWASP,
        atlas=_ATLAS,
        metrics=[
            Metric(name="identification_rate", value=rate, unit="ratio",
                   description="classes whose reconstruction is nearest its real class mean"),
            Metric(name="mean_cosine_to_class_mean", value=float(quality.cosine.mean()),
                   unit="ratio"),
            Metric(name="mean_mse_to_class_mean", value=float(quality.mse.mean()),
                   unit="squared input units"),
            Metric(name="mean_confidence", value=float(result.confidence.mean()),
                   unit="ratio"),
            Metric(name="queries", value=float(result.n_queries), unit="queries"),
        ],
        evidence={
            "identified_classes": [int(c) for c, ok in zip(result.classes, quality.identified,
                                                           strict=True) if ok],
            "white_box": white,
        },
        charts=[Chart(title="Reconstruction similarity to the real class mean", kind="bar",
                      x_label="class", y_label="centred cosine similarity",
                      series=[Series(name="MI-FACE", x=[str(c) for c in result.classes],
                                     y=[float(v) for v in quality.cosine])])],
        recommendation=_RECOMMENDATION if severity > Severity.INFO else (
            "No action needed for inversion at this budget; keep outputs coarse."),
    )


def _attribute_finding(target: Target, column: object, seed: int) -> Finding:
    from bastion.attacks.inference import attribute_inference

    assert target.model is not None and target.train is not None and target.test is not None
    key = column if isinstance(column, int) else str(column)
    result = attribute_inference(target.model, target.train, target.test, key, seed=seed)
    severity = attribute_severity(result)
    return Finding(
        id=f"inversion/attribute-{result.column}",
        check="inversion",
        title=(f"Training records' {result.column!r} can be inferred through the model "
               f"(+{result.advantage:.0%} over imputation)" if severity > Severity.INFO
               else f"The model adds nothing to guessing {result.column!r}"),
        severity=severity,
        description=(
            f"Knowing every other column and the label of {result.n_records} training "
            f"records, querying the model recovers {result.column!r} for "
            f"{result.attack_accuracy:.1%} of them; imputation from the attacker's own data, "
            f"without the model, gets {result.baseline_accuracy:.1%} (majority value: "
            f"{result.majority_accuracy:.1%})."
        ),
        owasp=_OWASP,
        atlas=_ATLAS,
        metrics=[
            Metric(name="attack_accuracy", value=result.attack_accuracy, unit="ratio"),
            Metric(name="imputation_accuracy", value=result.baseline_accuracy, unit="ratio"),
            Metric(name="advantage", value=result.advantage, unit="ratio"),
            Metric(name="queries", value=float(result.n_queries), unit="queries"),
        ],
        evidence={"column": result.column},
        recommendation=_RECOMMENDATION if severity > Severity.INFO else (
            "The column is no easier to guess with the model than without it."),
    )
