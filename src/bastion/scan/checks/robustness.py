"""The ``robustness`` check: can small input changes fool the model (evasion)?

Measures robust accuracy — the share of samples the model classifies correctly and no
attack of the profile can fool — over a grid of budgets (OWASP ML01 input
manipulation; ATLAS AML.T0015 evade AI model, AML.T0043 craft adversarial data).

Profiles choose the attacks: ``quick`` FGSM + PGD-10 (seconds, the demo's),
``standard`` APGD-CE + APGD-T, ``thorough`` the AutoAttack ensemble. ``standard`` and
``thorough`` also report the distribution of minimal perturbations (DeepFool) on up to
100 correctly classified samples. With ``options["surrogate"]`` (a white-box model for
the same task) the finding adds the transfer rate: the share of correctly classified
samples fooled by PGD examples crafted on the surrogate at the reference budget. A model
without gradients gets the black-box Square attack instead. Each attack runs only on
the samples still robust (per-sample worst case), and a sample fooled at one budget
counts as fooled at every larger one, so the curve is monotone.

Budgets are fractions of the input range ``hi - lo`` in L-inf (override with
``options["eps"]``, absolute values, and ``options["norm"]``). The verdict reads the
robust accuracy at the reference budget, 8/255 of the range (the common CIFAR-10
budget), relative to clean accuracy:

======================  ==========
robust / clean accuracy  severity
======================  ==========
< 0.10                  critical
< 0.40                  high
< 0.70                  medium
< 0.90                  low
>= 0.90                 info
======================  ==========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from bastion.errors import ConfigError, InvalidDataError
from bastion.progress import emit
from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target
from bastion.typing import Classifier, Differentiable

if TYPE_CHECKING:
    import torch

    from bastion.attacks import EvasionAttack
    from bastion.attacks._ops import Norm

__all__ = ["REFERENCE_FRACTION", "SEVERITY_THRESHOLDS", "Robustness"]

REFERENCE_FRACTION = 8 / 255
# (robust accuracy / clean accuracy below this, severity), checked in order.
SEVERITY_THRESHOLDS: tuple[tuple[float, Severity], ...] = (
    (0.10, Severity.CRITICAL),
    (0.40, Severity.HIGH),
    (0.70, Severity.MEDIUM),
    (0.90, Severity.LOW),
)

_GRIDS = {
    "quick": (2 / 255, REFERENCE_FRACTION, 16 / 255),
    "standard": (1 / 255, 2 / 255, 4 / 255, REFERENCE_FRACTION, 16 / 255, 32 / 255),
    "thorough": (1 / 255, 2 / 255, 4 / 255, REFERENCE_FRACTION, 16 / 255, 32 / 255),
}
_SAMPLES = {"quick": 100, "standard": 500, "thorough": 1000}


def severity_for(ratio: float) -> Severity:
    """Severity of a robust/clean accuracy ratio (the table in the module docstring)."""
    for limit, severity in SEVERITY_THRESHOLDS:
        if ratio < limit:
            return severity
    return Severity.INFO


def attacks_for(profile: str, model: Classifier, eps: float, norm: Norm) -> list[EvasionAttack]:
    """The attacks a profile runs at budget ``eps``, in order."""
    from bastion.attacks.evasion.apgd import APGDCE, APGDT
    from bastion.attacks.evasion.autoattack import AutoAttack
    from bastion.attacks.evasion.fgsm import FGSM
    from bastion.attacks.evasion.pgd import PGD
    from bastion.attacks.evasion.square import Square

    if not isinstance(model, Differentiable):
        queries = {"quick": 100, "standard": 1000, "thorough": 5000}[profile]
        return [Square(eps=eps, norm=norm, max_queries=queries)]
    if profile == "quick":
        return [FGSM(eps=eps, norm=norm), PGD(eps=eps, norm=norm, steps=10)]
    if profile == "standard":
        parts: list[EvasionAttack] = [APGDCE(eps=eps, norm=norm, steps=50)]
        if model.n_classes >= 4:
            parts.append(APGDT(eps=eps, norm=norm, steps=50, n_target_classes=3))
        return parts
    return [AutoAttack(eps=eps, norm=norm)]


@CHECKS.register("robustness")
@dataclass(frozen=True, kw_only=True)
class Robustness:
    """Robust accuracy under evasion attacks over a budget grid, overall and per class."""

    name: ClassVar[str] = "robustness"
    title: ClassVar[str] = "Robustness to adversarial examples (evasion)"
    owasp: ClassVar[tuple[str, ...]] = ("ML01",)
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0015", "AML.T0043")
    needs: ClassVar[tuple[Need, ...]] = ("model", "labels")

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        import torch

        model, data = target.model, target.eval_data
        assert model is not None and data is not None and data.y is not None  # applies()
        lo, hi = (float(b) for b in model.bounds)
        norm = ctx.options.get("norm", "linf")
        if norm not in ("linf", "l2"):
            raise ConfigError(f"robustness norm must be linf or l2; got {norm!r}")
        scale = (hi - lo) * (1.0 if norm == "linf" else float(np.sqrt(np.prod(
            model.input_shape))))
        eps_grid = sorted(float(e) for e in ctx.options.get(
            "eps", [f * scale for f in _GRIDS[ctx.profile]]))
        ref_eps = REFERENCE_FRACTION * scale
        if "eps" in ctx.options:
            ref_eps = min(eps_grid, key=lambda e: abs(e - ref_eps))

        n = min(len(data), _SAMPLES[ctx.profile])
        idx = np.sort(ctx.rng.choice(len(data), size=n, replace=False))
        x = np.clip(np.asarray(data.x[idx], dtype=np.float32), lo, hi)
        y = np.asarray(data.y[idx]).astype(np.int64)
        if y.min() < 0 or y.max() >= model.n_classes:
            raise InvalidDataError(
                f"labels must lie in [0, {model.n_classes - 1}] for this model"
            )
        robust = model.predict_proba(x).argmax(axis=1) == y
        clean_acc = float(robust.mean())
        gen = torch.Generator().manual_seed(ctx.seed)
        curve: list[float] = []
        at_ref = robust.copy()
        used: list[str] = []
        for k, eps in enumerate(eps_grid):
            emit(ctx.progress, "robustness", k, len(eps_grid), f"eps={eps:.4g}")
            for attack in attacks_for(ctx.profile, model, eps, norm):
                todo = np.flatnonzero(robust)
                if todo.size == 0:
                    break
                result = attack(model, x[todo], y[todo], generator=gen)
                robust[todo] = ~result.success.cpu().numpy()
                if type(attack).__name__ not in used:
                    used.append(type(attack).__name__)
            curve.append(float(robust.mean()))
            if eps == ref_eps:
                at_ref = robust.copy()
        emit(ctx.progress, "robustness", len(eps_grid), len(eps_grid))
        minimal = None
        if ctx.profile != "quick" and isinstance(model, Differentiable):
            minimal = _minimal_perturbations(model, x, y, norm, gen)
        finding = _finding(self, target, clean_acc, eps_grid, curve, ref_eps, at_ref, y, norm,
                           used, ctx.profile, data.class_names, minimal)
        surrogate = ctx.options.get("surrogate")
        if surrogate is None:
            return [finding]
        rate = _transfer_rate(model, surrogate, x, y, ref_eps, norm, gen)
        metric = Metric(name="transfer_rate", value=rate, unit="ratio",
                        description="share of correctly classified samples fooled by "
                                    "examples crafted on the surrogate (PGD) at the "
                                    "reference eps")
        return [finding.model_copy(update={
            "metrics": [*finding.metrics, metric],
            "evidence": finding.evidence | {"transfer_rate": rate}})]


def _transfer_rate(model: Classifier, surrogate: object, x: np.ndarray, y: np.ndarray,
                   eps: float, norm: Norm, gen: torch.Generator) -> float:
    """Share of the correctly classified samples that PGD examples from ``surrogate`` fool."""
    from bastion.attacks.evasion.transfer import Transfer

    right = np.flatnonzero(model.predict_proba(x).argmax(axis=1) == y)
    if right.size == 0:
        return 0.0
    result = Transfer(eps=eps, norm=norm, surrogate=surrogate, crafting={"steps": 20})(
        model, x[right], y[right], generator=gen)
    return result.success_rate


def _minimal_perturbations(
    model: Classifier, x: np.ndarray, y: np.ndarray, norm: Norm, gen: torch.Generator
) -> np.ndarray:
    """DeepFool's minimal perturbation sizes on up to 100 correctly classified samples."""
    from bastion.attacks.evasion.deepfool import DeepFool

    right = np.flatnonzero(model.predict_proba(x).argmax(axis=1) == y)[:100]
    if right.size == 0:
        return np.zeros(0)
    result = DeepFool(norm=norm)(model, x[right], y[right], generator=gen)
    sizes = (result.linf if norm == "linf" else result.l2).cpu().numpy()
    return np.asarray(sizes[result.success.cpu().numpy()], dtype=np.float64)


def _finding(
    check: Robustness, target: Target, clean_acc: float, eps_grid: list[float],
    curve: list[float], ref_eps: float, at_ref: np.ndarray, y: np.ndarray, norm: str,
    used: list[str], profile: str, class_names: tuple[str, ...],
    minimal: np.ndarray | None,
) -> Finding:
    robust_ref = float(at_ref.mean())
    ratio = robust_ref / clean_acc if clean_acc > 0 else 0.0
    severity = severity_for(ratio)
    classes = sorted(int(c) for c in np.unique(y))
    names = [class_names[c] if c < len(class_names) else str(c) for c in classes]
    per_class = [float(at_ref[y == c].mean()) for c in classes]
    worst = int(np.argmin(per_class))
    metrics = [
        Metric(name="clean_accuracy", value=clean_acc, unit="ratio",
               description="accuracy on the evaluated samples without attack"),
        Metric(name="robust_accuracy", value=robust_ref, unit="ratio",
               description=f"accuracy under attack at the reference eps={ref_eps:.4g} ({norm})"),
        Metric(name="robust_to_clean_ratio", value=ratio, unit="ratio",
               description="robust accuracy divided by clean accuracy (drives severity)"),
        *[Metric(name=f"robust_accuracy@eps={e:.4g}", value=a, unit="ratio")
          for e, a in zip(eps_grid, curve, strict=True)],
    ]
    charts = [
        Chart(title="Robust accuracy by perturbation budget", kind="line",
              x_label=f"eps ({norm})", y_label="robust accuracy",
              series=[Series(name="robust accuracy", x=[0.0, *eps_grid],
                             y=[clean_acc, *curve])]),
        Chart(title=f"Robust accuracy per class at eps={ref_eps:.3g}", kind="bar",
              x_label="class", y_label="robust accuracy",
              series=[Series(name="robust accuracy", x=names, y=per_class)]),
    ]
    evidence: dict[str, object] = {
        "norm": norm, "eps": eps_grid, "robust_accuracy": curve, "reference_eps": ref_eps,
        "per_class_robust_accuracy": dict(zip(names, per_class, strict=True)),
        "attacks": used, "profile": profile, "n_samples": len(y),
    }
    if minimal is not None and minimal.size:
        metrics.append(Metric(
            name="median_minimal_perturbation", value=float(np.median(minimal)), unit=norm,
            description="median size of the smallest change DeepFool needs to fool the model"))
        evidence["minimal_perturbation_quantiles"] = {
            q: float(np.quantile(minimal, float(q))) for q in ("0.1", "0.5", "0.9")}
        charts.append(Chart(
            title="Smallest perturbation that fools the model (DeepFool)", kind="hist",
            x_label=f"perturbation size ({norm})", y_label="samples",
            series=[Series(name="minimal perturbation", x=[float(v) for v in minimal],
                           y=[1.0] * minimal.size)]))
    return Finding(
        id=f"{check.name}/{norm}",
        check=check.name,
        title=(f"Robust accuracy {robust_ref:.0%} (clean {clean_acc:.0%}) under {norm} "
               f"attacks at eps={ref_eps:.3g}"),
        severity=severity,
        description=(
            f"Attacks ({', '.join(used) or 'none needed'}; profile {profile}) searched for "
            f"inputs within an {norm} distance eps of {len(y)} test samples that the model "
            f"misclassifies. At eps={ref_eps:.3g}, {1 - robust_ref:.0%} of the samples are "
            f"misclassified or fooled; the weakest class is {names[worst]} with "
            f"{per_class[worst]:.0%} robust accuracy. Robust accuracy is an upper bound: "
            "stronger attacks (profile thorough) can only lower it."
        ),
        owasp=list(check.owasp),
        atlas=list(check.atlas),
        metrics=metrics,
        evidence=evidence,
        charts=charts,
        recommendation=(
            "Train with adversarial examples (PGD adversarial training) at the budget you "
            "must resist, evaluate again with --profile thorough, and reject inputs "
            "outside the expected range at the gateway."
            if severity >= Severity.MEDIUM else
            "Keep evaluating with stronger attacks (--profile thorough) before each release."
        ),
        location=str(target.model_path) if target.model_path is not None else None,
    )
