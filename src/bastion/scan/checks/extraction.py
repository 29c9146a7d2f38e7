"""The ``extraction`` check: can someone steal a working copy through the model's API?

Runs query-based extraction (``bastion.attacks.extraction``) through the black-box
``Classifier`` only (OWASP ML05 model theft; ATLAS AML.T0024.002 extract AI model and
AML.T0005 / AML.T0005.001 create a proxy model by replication). Half of the held-out
data (seeded) plays the attacker's unlabelled pool, the other half measures the copy.

Profiles (query budget, rounds, strategies): ``quick`` 500 queries in 3 rounds with
Knockoff pool sampling and random queries; ``standard`` 2,000 in 4 rounds and
``thorough`` 10,000 in 5, both adding Jacobian augmentation.

Severity, for the best strategy's fidelity F (agreement with the target's label on
held-out records) at the budget. A constant copy that always answers the target's most
common label already agrees on a share B, so what the answers taught the attacker is the
gain G = (F - B) / (1 - B) (0: nothing beyond the constant, 1: a perfect copy; 0 when
the target itself is constant):

* high: F ≥ 0.90 and G ≥ 0.5 (a functional copy, good enough to stage transfer attacks);
* medium: F ≥ 0.75 and G ≥ 0.3;
* low: G ≥ 0.1;
* info: little or nothing learnt at this budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from bastion.errors import RemoteModelError
from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

if TYPE_CHECKING:
    from bastion.attacks.extraction import ExtractionResult, QueryStrategy

__all__ = ["Extraction", "severity_of"]

_PROFILES: dict[str, tuple[int, int, int, bool]] = {
    # profile: (query budget, rounds, surrogate epochs, include Jacobian augmentation)
    "quick": (500, 3, 20, False),
    "standard": (2000, 4, 40, True),
    "thorough": (10000, 5, 60, True),
}
_EVAL_MAX = 1000
# An endpoint that answers these in the middle of the attack is defending itself.
_REFUSALS = (403, 429)

_RECOMMENDATION = (
    "Rate-limit and put quotas on queries per client and per key; return only the top "
    "label, or top-k with probabilities rounded to 1-2 decimals (full probability "
    "vectors make stealing far cheaper); monitor the query stream for extraction "
    "patterns (out-of-distribution or synthetic inputs, dense coverage near decision "
    "boundaries); require authentication and watermark or fingerprint the model so a "
    "stolen copy can be recognised."
)


def severity_of(fidelity: float, baseline: float) -> Severity:
    """The documented severity for a copy's fidelity (see the module docstring)."""
    gain = (fidelity - baseline) / (1.0 - baseline) if baseline < 1.0 else 0.0
    if fidelity >= 0.90 and gain >= 0.5:
        return Severity.HIGH
    if fidelity >= 0.75 and gain >= 0.3:
        return Severity.MEDIUM
    if gain >= 0.1:
        return Severity.LOW
    return Severity.INFO


def _strategies(pool: np.ndarray, jacobian: bool) -> list[QueryStrategy]:
    from bastion.attacks.extraction import JacobianAugmentation, KnockoffNets, RandomQueries

    strategies: list[QueryStrategy] = [KnockoffNets(pool=pool), RandomQueries()]
    if jacobian:
        strategies.append(JacobianAugmentation(seed_x=pool[:100]))
    return strategies


@CHECKS.register("extraction")
@dataclass(frozen=True, kw_only=True)
class Extraction:
    """Steal the model with a query budget; report the copy's fidelity per query spent."""

    name: ClassVar[str] = "extraction"
    title: ClassVar[str] = "Model theft through the prediction API"
    owasp: ClassVar[tuple[str, ...]] = ("ML05",)
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0024", "AML.T0024.002", "AML.T0005",
                                        "AML.T0005.001")
    needs: ClassVar[tuple[Need, ...]] = ("model", "data")

    def applies(self, target: Target) -> bool:
        data = target.eval_data
        return not target.missing(self.needs) and data is not None and len(data) >= 4

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        from bastion.attacks.extraction import extract_model

        assert target.model is not None and target.eval_data is not None  # applies()
        data = target.eval_data
        budget, rounds, epochs, jacobian = _PROFILES[ctx.profile]
        order = ctx.rng.permutation(len(data))
        half = len(order) // 2
        pool_idx, eval_idx = order[:half][:budget], order[half:][:_EVAL_MAX]
        x = np.asarray(data.x, dtype=np.float32)
        eval_y = None if data.y is None else np.asarray(data.y)[eval_idx]
        try:
            results = [
                extract_model(target.model, strategy, budget=budget, eval_x=x[eval_idx],
                              eval_y=eval_y, n_rounds=rounds, epochs=epochs, seed=ctx.seed,
                              progress=ctx.progress)
                for strategy in _strategies(x[pool_idx], jacobian)
            ]
        except RemoteModelError as err:
            if err.status not in _REFUSALS:
                raise
            return [_refused(target.model.n_queries, err.status, budget)]
        target_labels = target.model.predict_proba(x[eval_idx]).argmax(1)
        baseline = float(np.bincount(target_labels).max() / len(target_labels))
        return [_finding(results, baseline, budget)]


def _refused(n_queries: int, status: int | None, budget: int) -> Finding:
    """The endpoint blocked or rate-limited the attack before its budget was spent."""
    how = "blocked" if status == 403 else "rate-limited"
    return Finding(
        id="extraction/refused",
        check="extraction",
        title=f"The endpoint {how} the extraction after {n_queries} queries",
        severity=Severity.INFO,
        description=(
            f"Query-based extraction with a budget of {budget} queries was refused with "
            f"HTTP {status} after {n_queries} queries: the endpoint detects or limits model "
            "theft. How faithful a copy could have been before the refusal is not measured, "
            "since the endpoint refuses the evaluation queries too."
        ),
        owasp=["ML05"],
        atlas=["AML.T0024", "AML.T0024.002", "AML.T0005", "AML.T0005.001"],
        metrics=[Metric(name="queries_before_refusal", value=float(n_queries),
                        unit="queries")],
        evidence={"http_status": status, "budget": budget},
        recommendation=(
            "Keep the limits; check that honest clients are not refused at the same rate "
            "(bastion incidents list), and that an attacker with several keys or addresses "
            "is refused too."
        ),
    )


def _finding(results: list[ExtractionResult], baseline: float, budget: int) -> Finding:
    best = max(results, key=lambda r: r.fidelity)
    severity = severity_of(best.fidelity, baseline)
    metrics = [
        Metric(name="fidelity", value=best.fidelity, unit="ratio",
               description=f"agreement of the best copy ({best.strategy}) with the target"),
        Metric(name="queries", value=float(best.n_queries), unit="queries"),
        Metric(name="constant_copy_fidelity", value=baseline, unit="ratio"),
    ]
    if best.accuracy is not None:
        metrics.append(Metric(name="surrogate_accuracy", value=best.accuracy, unit="ratio"))
    for r in results:
        metrics.append(Metric(name=f"{r.strategy}.fidelity", value=r.fidelity, unit="ratio"))
    chart = Chart(
        title="Stolen copy's fidelity against queries spent", kind="line",
        x_label="queries", y_label="fidelity",
        series=[Series(name=r.strategy, x=[float(s.n_queries) for s in r.steps],
                       y=[s.fidelity for s in r.steps]) for r in results],
    )
    stolen = severity > Severity.INFO
    return Finding(
        id="extraction/stolen-copy",
        check="extraction",
        title=(f"A {best.fidelity:.0%}-faithful copy was stolen with {best.n_queries} queries"
               if stolen else f"No useful copy within {budget} queries"),
        severity=severity,
        description=(
            f"Using only the model's probabilities, {len(results)} query strategies each "
            f"trained a surrogate with at most {budget} queries. The best ({best.strategy}) "
            f"agrees with the target on {best.fidelity:.1%} of held-out records (a constant "
            f"answer agrees on {baseline:.1%})."
        ),
        owasp=["ML05"],
        atlas=["AML.T0024", "AML.T0024.002", "AML.T0005", "AML.T0005.001"],
        metrics=metrics,
        evidence={
            "best_strategy": best.strategy,
            "curve": {r.strategy: [[s.n_queries, s.fidelity] for s in r.steps]
                      for r in results},
            "evaluation_queries": best.n_eval_queries,
        },
        charts=[chart],
        recommendation=_RECOMMENDATION if stolen else (
            "Keep query limits in place; re-run with the standard or thorough profile for "
            "a larger attack budget."
        ),
    )
