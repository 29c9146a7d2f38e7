"""The before/after evaluation of a hardened model, honest about gradient masking.

Both models are attacked on the same held-out samples with the evasion check's attacks
for a profile (:func:`bastion.scan.checks.robustness.attacks_for`; ``thorough`` is the
AutoAttack ensemble), each attack on the samples still robust, so robust accuracy is the
per-sample worst case. A defense that masks gradients is also attacked adaptively: the
profile's attacks run on every view in ``HardenResult.adaptive`` (BPDA, EOT, logits/T)
and a score-based Square attack runs on the deployed model, whose gradients it never
uses; every adversarial input is judged on the deployed model. The verdict reads the
worst case, and when it shows no gain over the original model the finding says so in
its title.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from bastion.data import Dataset
from bastion.defenses._base import HardenResult
from bastion.errors import ConfigError, InvalidDataError
from bastion.progress import ProgressSink, emit
from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.typing import Classifier

if TYPE_CHECKING:
    import torch

    from bastion.attacks import EvasionAttack

__all__ = ["NO_GAIN", "Evaluation", "evaluate", "hardening_findings"]

Profile = Literal["quick", "standard", "thorough"]
NO_GAIN = 0.02  # a robust-accuracy gain at or below this is "no robustness"
_SQUARE_QUERIES = {"quick": 500, "standard": 1000, "thorough": 5000}


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Accuracies of the original (``before``) and hardened (``after``) models.

    ``adaptive_after`` is the worst case over the standard and the adaptive attacks
    (None when the defense does not mask gradients and no adaptive attack ran).
    """

    eps: float
    norm: str
    profile: str
    n_samples: int
    clean_before: float
    clean_after: float
    robust_before: float
    robust_after: float
    adaptive_after: float | None
    attacks: tuple[str, ...]
    adaptive_attacks: tuple[str, ...]

    @property
    def worst_after(self) -> float:
        """Robust accuracy of the hardened model under every attack that ran."""
        return self.robust_after if self.adaptive_after is None else self.adaptive_after

    @property
    def gain(self) -> float:
        return self.worst_after - self.robust_before


def evaluate(
    before: Classifier, result: HardenResult, test: Dataset, *, eps: float,
    norm: Literal["linf", "l2"] = "linf", profile: Profile = "thorough", n_samples: int = 500,
    seed: int = 0, progress: ProgressSink | None = None,
) -> Evaluation:
    """Attack ``before`` and ``result.model`` on up to ``n_samples`` of ``test``."""
    import torch

    from bastion.scan.checks.robustness import attacks_for

    if profile not in _SQUARE_QUERIES:
        raise ConfigError(f"profile must be quick, standard or thorough; got {profile!r}")
    if not eps > 0:
        raise ConfigError(f"the evaluation budget must be positive; got eps={eps}")
    x, y = _sample(before, test, n_samples, seed)
    after = result.model
    stages = 3 if result.masks_gradients else 2
    emit(progress, "evaluation", 0, stages, "original model")
    # Each model is attacked with the same random draws, so only the model differs.
    right_before = _correct(before, x, y)
    robust_before, names = _attack_all(before, right_before.copy(), x, y,
                                       attacks_for(profile, before, eps, norm),
                                       torch.Generator().manual_seed(seed), before)
    emit(progress, "evaluation", 1, stages, "hardened model")
    right_after = _correct(after, x, y)
    gen = torch.Generator().manual_seed(seed)
    robust_after, names_after = _attack_all(after, right_after.copy(), x, y,
                                            attacks_for(profile, after, eps, norm), gen, after)
    adaptive: np.ndarray | None = None
    adaptive_names: list[str] = []
    if result.masks_gradients:
        emit(progress, "evaluation", 2, stages, "adaptive attacks")
        adaptive, adaptive_names = _adaptive(result, robust_after.copy(), x, y, eps, norm,
                                             profile, gen)
    emit(progress, "evaluation", stages, stages)
    return Evaluation(
        eps=eps, norm=norm, profile=profile, n_samples=len(y),
        clean_before=float(right_before.mean()), clean_after=float(right_after.mean()),
        robust_before=float(robust_before.mean()), robust_after=float(robust_after.mean()),
        adaptive_after=None if adaptive is None else float(adaptive.mean()),
        attacks=tuple(dict.fromkeys([*names, *names_after])),
        adaptive_attacks=tuple(adaptive_names),
    )


def _sample(model: Classifier, test: Dataset, n: int, seed: int) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    if test.y is None or len(test) == 0:
        raise InvalidDataError("the evaluation data needs labels and at least one sample")
    if n < 1:
        raise ConfigError(f"the evaluation needs at least one sample; got n_samples={n}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(test), size=min(n, len(test)), replace=False))
    lo, hi = model.bounds
    return (np.clip(np.asarray(test.x[idx], dtype=np.float32), lo, hi),
            np.asarray(test.y[idx]).astype(np.int64))


def _correct(model: Classifier, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    predicted: np.ndarray = model.predict_proba(x).argmax(axis=1) == y
    return predicted


def _attack_all(
    model: Classifier, robust: np.ndarray, x: np.ndarray, y: np.ndarray,
    attacks: list[EvasionAttack], gen: torch.Generator, judge: Classifier,
) -> tuple[np.ndarray, list[str]]:
    """Run ``attacks`` in turn on the samples still robust; ``judge`` decides success."""
    names: list[str] = []
    for attack in attacks:
        todo = np.flatnonzero(robust)
        if todo.size == 0:
            break
        found = attack(model, x[todo], y[todo], generator=gen)
        x_adv = found.x_adv.detach().cpu().numpy()
        robust[todo] = _correct(judge, x_adv, y[todo])
        names.append(type(attack).__name__)
    return robust, names


def _adaptive(
    result: HardenResult, robust: np.ndarray, x: np.ndarray, y: np.ndarray, eps: float,
    norm: Literal["linf", "l2"], profile: Profile, gen: torch.Generator,
) -> tuple[np.ndarray, list[str]]:
    """The profile's attacks on each adaptive view, then Square on the deployed model."""
    from bastion.attacks.evasion.square import Square
    from bastion.scan.checks.robustness import attacks_for

    names: list[str] = []
    for label, view in result.adaptive:
        robust, used = _attack_all(view, robust, x, y, attacks_for(profile, view, eps, norm),
                                   gen, result.model)
        names += [f"{n} on {label}" for n in used]
    if profile != "thorough":  # AutoAttack already ends with Square
        square = Square(eps=eps, norm=norm, max_queries=_SQUARE_QUERIES[profile])
        robust, used = _attack_all(result.model, robust, x, y, [square], gen, result.model)
        names += [f"{n} (score-based, no gradients)" for n in used]
    return robust, names


def hardening_findings(result: HardenResult, evaluation: Evaluation) -> list[Finding]:
    """The before/after finding: accuracies, the verdict, the training log."""
    ev, method = evaluation, result.method
    privacy = "epsilon" in result.metrics
    masked = ev.adaptive_after is not None
    no_gain = ev.gain <= NO_GAIN
    overstated = masked and ev.robust_after - ev.worst_after > NO_GAIN
    where = f"eps={ev.eps:.3g} ({ev.norm})"
    if no_gain and masked:
        title = (f"{method} gives no robustness against adaptive attacks at {where}: robust "
                 f"accuracy {ev.robust_before:.0%} before, {ev.worst_after:.0%} after")
    elif no_gain and not privacy:
        title = (f"{method} gives no measurable robustness at {where}: robust accuracy "
                 f"{ev.robust_before:.0%} before, {ev.worst_after:.0%} after")
    else:
        title = (f"{method}: robust accuracy {ev.robust_before:.0%} -> {ev.worst_after:.0%} "
                 f"at {where}, clean accuracy {ev.clean_before:.0%} -> {ev.clean_after:.0%}")
    if privacy:
        title += (f"; ({result.metrics['epsilon']:.3g}, {result.metrics['delta']:.2g})-"
                  "differentially private")
    severity = _severity(ev, privacy)
    return [Finding(
        id=f"hardening/{method}",
        check="hardening",
        title=title,
        severity=severity,
        description=_description(result, ev, overstated),
        owasp=["ML03", "ML04"] if privacy else ["ML01"],
        atlas=["AML.T0024", "AML.T0024.000"] if privacy else ["AML.T0015", "AML.T0043"],
        metrics=_metrics(result, ev),
        evidence={"method": method, "masks_gradients": result.masks_gradients,
                  "attacks": list(ev.attacks), "adaptive_attacks": list(ev.adaptive_attacks),
                  "profile": ev.profile, "n_samples": ev.n_samples, "eps": ev.eps,
                  "norm": ev.norm, "notes": list(result.notes),
                  "training_log": [dict(row) for row in result.log]},
        charts=_charts(result, ev),
        recommendation=_recommendation(method, ev, masked, no_gain, privacy),
    )]


def _severity(ev: Evaluation, privacy: bool) -> Severity:
    from bastion.scan.checks.robustness import severity_for

    if ev.gain <= NO_GAIN and not privacy:
        return Severity.HIGH
    if privacy:
        return Severity.INFO
    return severity_for(ev.worst_after / ev.clean_after if ev.clean_after > 0 else 0.0)


def _description(result: HardenResult, ev: Evaluation, overstated: bool) -> str:
    parts = [
        f"On {ev.n_samples} held-out samples the original model has clean accuracy "
        f"{ev.clean_before:.1%} and robust accuracy {ev.robust_before:.1%}; the hardened "
        f"model has {ev.clean_after:.1%} and {ev.robust_after:.1%} under "
        f"{', '.join(ev.attacks) or 'no attack (nothing left to attack)'} (profile "
        f"{ev.profile}, {ev.norm} eps={ev.eps:.4g})."
    ]
    if ev.adaptive_after is not None:
        parts.append(
            f"The defense masks gradients, so it was also attacked adaptively "
            f"({', '.join(ev.adaptive_attacks) or 'nothing left to attack'}): robust "
            f"accuracy {ev.adaptive_after:.1%}.")
    if overstated:
        parts.append(
            f"Plain gradient attacks overstate its robustness by "
            f"{100 * (ev.robust_after - ev.worst_after):.1f} percentage points: the defense "
            "hides gradients rather than removing adversarial examples.")
    if ev.gain <= NO_GAIN:
        parts.append("The defense gives no robustness over the original model under these "
                     "attacks.")
    if ev.clean_after < ev.clean_before - 0.02:
        parts.append(f"It costs {100 * (ev.clean_before - ev.clean_after):.1f} percentage "
                     "points of clean accuracy.")
    parts += [note if note.endswith(".") else f"{note}." for note in result.notes]
    parts.append("Robust accuracy is an upper bound: stronger attacks can only lower it.")
    return " ".join(parts)


def _metrics(result: HardenResult, ev: Evaluation) -> list[Metric]:
    metrics = [
        Metric(name="clean_accuracy_before", value=ev.clean_before, unit="ratio"),
        Metric(name="clean_accuracy_after", value=ev.clean_after, unit="ratio"),
        Metric(name="robust_accuracy_before", value=ev.robust_before, unit="ratio",
               description=f"under the {ev.profile} attacks at eps={ev.eps:.4g}"),
        Metric(name="robust_accuracy_after", value=ev.robust_after, unit="ratio",
               description=f"under the {ev.profile} attacks at eps={ev.eps:.4g}"),
    ]
    if ev.adaptive_after is not None:
        metrics.append(Metric(name="adaptive_robust_accuracy_after", value=ev.adaptive_after,
                              unit="ratio", description="worst case including adaptive "
                              "attacks (the number to trust)"))
    metrics += [Metric(name=f"training_{k}", value=float(v), unit=_unit(k, ev.norm))
                for k, v in result.metrics.items()]
    return metrics


def _unit(key: str, norm: str) -> str:
    """The unit of a training metric, read from its name."""
    if key.endswith("accuracy"):
        return "ratio"
    return {"epsilon": "epsilon", "target_epsilon": "epsilon", "delta": "probability",
            "epochs_run": "epochs", "eps": norm, "max_grad_norm": "l2"}.get(key, "value")


def _charts(result: HardenResult, ev: Evaluation) -> list[Chart]:
    labels = ["clean", "robust"] + (["robust (adaptive)"] if ev.adaptive_after is not None
                                    else [])
    after = [ev.clean_after, ev.robust_after] + (
        [ev.adaptive_after] if ev.adaptive_after is not None else [])
    before = [ev.clean_before, ev.robust_before] + (
        [ev.robust_before] if ev.adaptive_after is not None else [])
    charts = [Chart(title=f"Accuracy before and after {result.method}", kind="bar",
                    x_label="measure", y_label="accuracy",
                    series=[Series(name="before", x=labels, y=before),
                            Series(name="after", x=labels, y=after)])]
    keys = [k for k in ("loss", "clean_accuracy", "robust_accuracy")
            if result.log and all(k in row for row in result.log)]
    if keys:
        steps = [float(i + 1) for i in range(len(result.log))]
        charts.append(Chart(
            title="Training log per epoch", kind="line", x_label="epoch",
            y_label="value", series=[Series(name=k.replace("_", " "), x=steps,
                                            y=[float(row[k]) for row in result.log])
                                     for k in keys]))
    return charts


def _recommendation(method: str, ev: Evaluation, masked: bool, no_gain: bool,
                    privacy: bool) -> str:
    if no_gain and masked:
        return ("Do not rely on this defense against a white-box attacker: use adversarial "
                "training (pgd-at or trades) or randomized smoothing for certified "
                "robustness.")
    if no_gain and not privacy:
        return (f"Train longer or at the budget you must resist (eps={ev.eps:.3g}), or try "
                "trades; evaluate again with --profile thorough.")
    if privacy:
        return ("Keep the privacy budget with the model card and audit membership leakage "
                "with 'bastion scan' to confirm the guarantee in practice.")
    if _severity(ev, privacy) >= Severity.MEDIUM:
        return (f"{method} helped but the model stays fragile at eps={ev.eps:.3g}: train more "
                "epochs, from a larger model, or with trades, and evaluate again with "
                "--profile thorough.")
    return (f"Deploy the hardened model and re-run this evaluation (--profile thorough) "
            f"whenever {method} is retrained.")
