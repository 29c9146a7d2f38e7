"""The ``membership`` check: can an attacker tell who was in the training set?

Runs membership-inference attacks (``bastion.attacks.inference``) with the training
data as members and the held-out data as non-members (OWASP ML04 membership inference;
ATLAS AML.T0024.000 infer training data membership). Reference-model attacks (LiRA,
RMIA, shadow models) need a way to train models like the target: a scikit-learn target
is cloned and refit; any other model needs ``options["membership_recipe"] =
"package.module:train_fn"`` (see :class:`~bastion.attacks.inference.EntryPointRecipe`),
and without one only the loss-threshold attack runs and the finding says so.

Profiles (records per side, reference models, attacks):

* ``quick``: 500 + 500, 4 references, loss threshold, LiRA and RMIA (online and offline);
* ``standard``: 2,000 + 2,000, 16 references, all attacks including shadow models;
* ``thorough``: every record, 64 references, all attacks.

Severity follows Carlini et al. (2022): what matters is how many members an attacker
identifies with few false alarms, i.e. the TPR at a low FPR, compared with chance (a
guess has TPR = FPR). A level is reached only when the evidence is also significant
(one-sided p < 0.001, so that noise in a small held-out set or the best of several
attacks cannot raise the alarm): for a TPR, the hypergeometric test that the members
caught at that FPR could be a random draw (and at least 5 members caught, so a couple
of lucky records cannot either); for an AUC, the Mann-Whitney normal approximation.
For the strongest attack:

* critical: TPR at 0.1 % FPR ≥ 10 % (100× chance; needs ≥ 1,000 non-members to
  resolve), or AUC ≥ 0.90;
* high: TPR at 0.1 % FPR ≥ 1 % (10× chance), or TPR at 1 % FPR ≥ 10 %, or AUC ≥ 0.75;
* medium: TPR at 1 % FPR ≥ 3 %, or AUC ≥ 0.60;
* low: AUC ≥ 0.55 (TPR near chance at low FPR, but a measurable average gap);
* info: no measurable leakage at this budget (reported, so the result is on record).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from bastion.data.dataset import Dataset
from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

if TYPE_CHECKING:
    from bastion.attacks.inference import MembershipAttack, MembershipResult, TrainingRecipe
    from bastion.typing import Classifier

__all__ = ["Membership", "severity_of"]

_PROFILES: dict[str, tuple[int | None, int, bool]] = {
    # profile: (records per side, reference models, include shadow models)
    "quick": (500, 4, False),
    "standard": (2000, 16, True),
    "thorough": (None, 64, True),
}
_ALPHA = 1e-3
_MIN_HITS = 5

_RECOMMENDATION = (
    "Train with differential privacy (DP-SGD via Opacus) at a planned budget "
    "(plan ε with `bastion privacy dp-plan`; ε ≤ 8 with δ < 1/n bounds any attacker's "
    "advantage); regularise harder (weight decay, dropout, early stopping, data "
    "augmentation) to shrink the train/test loss gap; return labels or top-k classes "
    "with rounded probabilities instead of full-precision scores; rate-limit and monitor "
    "queries per client. Re-run this check after each change."
)


def severity_of(result: MembershipResult) -> Severity:
    """The documented severity of one attack's result (see the module docstring)."""
    # 0.1 % FPR only counts when the held-out set can resolve it.
    low = result.tpr_at_fpr[0.001] if result.n_nonmembers >= 1000 else 0.0
    one = result.tpr_at_fpr[0.01]

    def tpr_over(tpr: float, fpr: float, threshold: float) -> bool:
        return (tpr >= threshold and tpr * result.n_members >= _MIN_HITS
                and _tpr_p_value(result, tpr, fpr) < _ALPHA)

    def auc_over(threshold: float) -> bool:
        return result.auc >= threshold and _auc_p_value(result) < _ALPHA

    if tpr_over(low, 0.001, 0.10) or auc_over(0.90):
        return Severity.CRITICAL
    if tpr_over(low, 0.001, 0.01) or tpr_over(one, 0.01, 0.10) or auc_over(0.75):
        return Severity.HIGH
    if tpr_over(one, 0.01, 0.03) or auc_over(0.60):
        return Severity.MEDIUM
    if auc_over(0.55):
        return Severity.LOW
    return Severity.INFO


def _tpr_p_value(result: MembershipResult, tpr: float, fpr: float) -> float:
    """P(at least the members caught | the flagged records were a random draw)."""
    from scipy.stats import hypergeom

    n_in, n_out = result.n_members, result.n_nonmembers
    caught = round(tpr * n_in)
    flagged = caught + int(fpr * n_out)
    return float(hypergeom.sf(caught - 1, n_in + n_out, n_in, flagged))


def _auc_p_value(result: MembershipResult) -> float:
    """One-sided p-value of the AUC against 0.5 (Mann-Whitney, normal approximation)."""
    from scipy.stats import norm

    n_in, n_out = result.n_members, result.n_nonmembers
    sd = np.sqrt((n_in + n_out + 1) / (12.0 * n_in * n_out))
    return float(norm.sf((result.auc - 0.5) / sd))


def _low_tpr(result: MembershipResult) -> float:
    """TPR at the lowest FPR the held-out set resolves (0.1 % or 1 %)."""
    return result.tpr_at_fpr[0.001 if result.n_nonmembers >= 1000 else 0.01]


def _recipe(target: Target, ctx: ScanContext) -> tuple[TrainingRecipe | None, str]:
    """The recipe for reference models, and a note saying where it came from."""
    from bastion.attacks.inference import EntryPointRecipe, SklearnRecipe
    model = target.model
    entry = ctx.options.get("membership_recipe")
    if entry:
        return EntryPointRecipe(entry_point=str(entry)), f"reference models from {entry}"
    # A scikit-learn estimator behind the adapter (the black-box adapter, or a torch twin
    # that keeps its source) is the recipe: clone and refit.
    estimator = getattr(model, "estimator", None)
    if model is not None and hasattr(estimator, "get_params") and hasattr(estimator, "fit"):
        return (
            SklearnRecipe(estimator=estimator, input_shape=model.input_shape,
                          bounds=model.bounds),
            f"reference models: clones of the target {type(estimator).__name__}",
        )
    return None, (
        "no training recipe for this model, so only the loss-threshold attack ran; give "
        "options membership_recipe='package.module:train_fn' for LiRA and RMIA, which "
        "are usually far stronger"
    )


def _sample(data: Dataset, n: int | None, rng: np.random.Generator) -> tuple[Dataset, np.ndarray]:
    if n is None or len(data) <= n:
        return data, np.arange(len(data))
    idx = np.sort(rng.choice(len(data), n, replace=False))
    return replace(data, x=data.x[idx], y=None if data.y is None else data.y[idx]), idx


def _attacks(with_shadow: bool) -> list[MembershipAttack]:
    from bastion.attacks.inference import RMIA, LiRA, LossThreshold, ShadowModels

    attacks: list[MembershipAttack] = [LossThreshold(), LiRA(), LiRA(online=False), RMIA(),
                                       RMIA(online=False)]
    return [*attacks, ShadowModels()] if with_shadow else attacks


@CHECKS.register("membership")
@dataclass(frozen=True, kw_only=True)
class Membership:
    """Membership inference with the training data as members, held-out data as not."""

    name: ClassVar[str] = "membership"
    title: ClassVar[str] = "Training-data membership leakage"
    owasp: ClassVar[tuple[str, ...]] = ("ML04",)
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0024", "AML.T0024.000")
    needs: ClassVar[tuple[Need, ...]] = ("model", "train", "test", "labels")

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs) and (
            target.train is not None and target.train.y is not None
        )

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        from bastion.attacks.inference import audit_membership

        assert target.model is not None and target.train is not None  # applies()
        assert target.test is not None
        per_side, n_refs, shadow = _PROFILES[ctx.profile]
        members, member_idx = _sample(target.train, per_side, ctx.rng)
        nonmembers, _ = _sample(target.test, per_side, ctx.rng)
        recipe, note = _recipe(target, ctx)
        audit = audit_membership(
            target.model, members, nonmembers, attacks=_attacks(shadow), recipe=recipe,
            n_references=n_refs, seed=ctx.seed, n_jobs=int(ctx.options.get("n_jobs", 1)),
            progress=ctx.progress,
        )
        best = max(audit.results, key=lambda r: (severity_of(r).rank, _low_tpr(r), r.auc))
        return [_finding(target.model, best, audit.results, member_idx, note,
                         None if audit.references is None else audit.references.train_time_s)]


def _finding(
    model: Classifier,
    best: MembershipResult,
    results: list[MembershipResult],
    member_idx: np.ndarray,
    note: str,
    ref_time_s: float | None,
) -> Finding:
    severity = severity_of(best)
    metrics = [
        Metric(name="auc", value=best.auc, unit="ratio",
               description=f"ROC AUC of the strongest attack ({best.attack})"),
        Metric(name="tpr_at_0.1pct_fpr", value=best.tpr_at_fpr[0.001], unit="ratio",
               description="members found with at most 0.1 % false alarms (chance: 0.001)"),
        Metric(name="tpr_at_1pct_fpr", value=best.tpr_at_fpr[0.01], unit="ratio",
               description="members found with at most 1 % false alarms (chance: 0.01)"),
        Metric(name="balanced_accuracy", value=best.balanced_accuracy, unit="ratio"),
        Metric(name="target_queries", value=float(best.n_target_queries), unit="queries"),
    ]
    for r in results:
        metrics.append(Metric(name=f"{r.attack}.auc", value=r.auc, unit="ratio"))
        metrics.append(Metric(name=f"{r.attack}.tpr_at_1pct_fpr", value=r.tpr_at_fpr[0.01],
                              unit="ratio"))
    if ref_time_s is not None:
        metrics.append(Metric(name="reference_train_time", value=ref_time_s, unit="s",
                              description="mean wall time to train one reference model"))
    xs, _ = best.roc_points()
    series = [Series(name="chance", x=xs, y=xs)]
    for r in results:
        rx, ry = r.roc_points()
        series.append(Series(name=r.attack, x=rx, y=ry))
    chart = Chart(title="Membership inference ROC (log-spaced FPR)", kind="line",
                  x_label="false-positive rate", y_label="true-positive rate", series=series)
    leak = severity > Severity.INFO
    stats = f"{best.attack}: {best.tpr_at_fpr[0.01]:.1%} TPR at 1 % FPR, AUC {best.auc:.2f}"
    if severity >= Severity.MEDIUM:
        title = f"Training members are identifiable ({stats})"
    elif leak:
        title = f"Slight membership leakage ({stats})"
    else:
        title = "No measurable membership leakage at this attack budget"
    return Finding(
        id="membership/leakage",
        check="membership",
        title=title,
        severity=severity,
        description=(
            f"{len(results)} attack(s) tried to tell {best.n_members} training records from "
            f"{best.n_nonmembers} held-out records using only the model's probabilities "
            f"({model.n_classes} classes). The strongest, {best.attack}, reached AUC "
            f"{best.auc:.3f} and TPR {best.tpr_at_fpr[0.001]:.2%} at 0.1 % FPR. {note}."
        ),
        owasp=["ML04"],
        atlas=["AML.T0024", "AML.T0024.000"],
        metrics=metrics,
        evidence={
            "strongest_attack": best.attack,
            "most_exposed_train_indices": [int(i) for i in member_idx[best.most_exposed]],
            "per_class_auc": {str(k): v for k, v in best.per_class_auc.items()},
            "n_members": best.n_members,
            "n_nonmembers": best.n_nonmembers,
            "fpr_resolution": 1.0 / best.n_nonmembers,
            "reference_models": note,
        },
        charts=[chart],
        recommendation=_RECOMMENDATION if leak else (
            "Keep this check in CI; leakage can appear when the model or data changes. "
            "Use the standard or thorough profile for a stronger audit."
        ),
    )
