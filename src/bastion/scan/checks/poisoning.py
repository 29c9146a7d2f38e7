"""``poisoning``: training rows that look poisoned or mislabeled.

Runs the dataset detectors of :mod:`bastion.detection.poisoning` (spectral signatures,
activation clustering, kNN label consistency, confident learning, per-class isolation
forest) on the training data and reports:

- ``backdoor-cluster-<class>``: high — activation clustering found a small, well-separated
  cluster inside a class (Chen et al., 2018): the shape a backdoor leaves;
- ``backdoor-target-<class>``: high — with a model that gives gradients, Neural Cleanse
  (Wang et al., 2019) reversed a trigger for this class far smaller than for the others;
- ``label-errors``: medium when at least ``label_error_fraction`` of the rows are suspect
  label errors (flagged by two or more detectors), else low. The bar is 3 %: on the
  clean demo data the audit calls 0.5 % (breast cancer) to 2.1 % (digits) of the rows
  suspect, and 5 % label flips give 4.9 % (breast cancer) to 6.6 % (digits);
- ``summary``: info — per-class counts, each detector's flags and a chart of score
  distributions, so a clean run still shows what was measured.

Evidence holds row indices and scores, never raw values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bastion.data.dataset import Dataset
from bastion.detection.poisoning.audit import AuditResult, audit
from bastion.errors import InvalidDataError
from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

__all__ = ["Poisoning", "audit_findings"]

_TOP = 50
_CHART_POINTS = 2000


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Scores mapped to [0, 1] so detectors can share one chart."""
    span = float(np.ptp(scores))
    return (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)


def _ranked(result: AuditResult, rows: np.ndarray) -> list[dict[str, object]]:
    """``rows`` most suspicious first (votes, then mean scaled score), with their scores."""
    scaled = {name: _scaled(d.scores) for name, d in result.detections.items()}
    mean = np.mean(list(scaled.values()), axis=0)
    votes = result.votes
    order = rows[np.lexsort((-mean[rows], -votes[rows]))][:_TOP]
    return [{"row": int(i), "votes": int(votes[i]),
             "scores": {name: round(float(d.scores[i]), 4)
                        for name, d in result.detections.items()}} for i in order]


_CLUSTER_DETECTORS = {
    "activation-clustering": (
        "backdoor-cluster",
        "Activation clustering split this class into two well-separated groups, the smaller "
        "one a minority: the trace a trigger leaves (Chen et al., 2018)."),
    "attribution-clustering": (
        "backdoor-attribution",
        "The model decides these rows on a few features the rest of the class does not "
        "use, and with those features masked the rows look like another class: the trace "
        "of a trigger planted on relabelled rows."),
}


def audit_findings(result: AuditResult, data: Dataset, *, check: str = "poisoning",
                   owasp: tuple[str, ...] = ("ML02", "ML10"),
                   atlas: tuple[str, ...] = ("AML.T0020", "AML.T0018"),
                   label_error_fraction: float = 0.03) -> list[Finding]:
    """Findings for one audit of ``data``; shared by the scan check and `bastion data audit`."""
    if data.y is None or len(data) != len(result.suspect):
        raise InvalidDataError("these findings need the labelled dataset the audit ran on")
    y = data.y

    def finding(slug: str, title: str, severity: Severity, **kw: object) -> Finding:
        return Finding(id=f"{check}/{slug}", check=check, title=title, severity=severity,
                       owasp=list(owasp), atlas=list(atlas), **kw)

    def name(c: np.integer | int) -> str:
        return data.class_names[int(c)] if len(data.class_names) > int(c) else str(c)

    found: list[Finding] = []
    backdoor_rows = np.zeros(len(y), dtype=bool)
    for detector, (slug, how) in _CLUSTER_DETECTORS.items():
        if detector not in result.detections:
            continue
        flagged = result.detections[detector].flagged
        backdoor_rows |= flagged
        for c in np.unique(y[flagged]):
            rows = np.flatnonzero(flagged & (y == c))
            found.append(finding(
                f"{slug}-{c}",
                f"Class {name(c)} holds a separate cluster of {len(rows)} rows "
                "(possible backdoor)",
                Severity.HIGH,
                metrics=[Metric(name="rows", value=len(rows), unit="rows"),
                         Metric(name="share of class", value=len(rows) / int((y == c).sum()),
                                unit="fraction")],
                evidence={"class": name(c), "detector": detector,
                          "rows": _ranked(result, rows)},
                description=how,
                recommendation="Inspect these rows for a shared pattern; drop them "
                               "(`bastion data audit --out clean.npz`) and retrain.",
            ))
    found += _trigger_findings(result, y, finding, name)
    carriers = result.detections.get("neural-cleanse")
    if carriers is not None:
        backdoor_rows |= carriers.flagged
    labels = result.suspect & ~backdoor_rows
    if labels.any():
        share = float(labels.mean())
        found.append(finding(
            "label-errors", f"{int(labels.sum())} rows look mislabeled",
            Severity.MEDIUM if share >= label_error_fraction else Severity.LOW,
            metrics=[Metric(name="rows", value=int(labels.sum()), unit="rows"),
                     Metric(name="share", value=share, unit="fraction")],
            evidence={"rows": _ranked(result, np.flatnonzero(labels))},
            description="Both label checks (neighbours' labels and confident learning) "
                        "single these rows out, or one of them and two other detectors: "
                        "label noise or label flipping.",
            recommendation="Review the labels of these rows; relabel or drop them.",
        ))
    per_class = {name(c): {"rows": int((y == c).sum()),
                           "suspect": int((result.suspect & (y == c)).sum()),
                           **{d: int((det.flagged & (y == c)).sum())
                              for d, det in result.detections.items()}}
                 for c in np.unique(y)}
    step = max(1, len(y) // _CHART_POINTS)
    cleanse = ({"l1_norms": {name(c): round(float(v), 3)
                             for c, v in enumerate(result.triggers.l1_norms)},
                "anomaly_index": {name(c): round(float(v), 3)
                                  for c, v in enumerate(result.triggers.anomaly)}}
               if result.triggers is not None else {})
    found.append(finding(
        "summary", f"{int(result.suspect.sum())} of {len(y)} training rows are suspect",
        Severity.INFO,
        metrics=[Metric(name="suspect rows", value=int(result.suspect.sum()), unit="rows")]
        + [Metric(name=f"flagged by {d}", value=int(det.flagged.sum()), unit="rows",
                  description=det.threshold) for d, det in result.detections.items()],
        evidence={"per_class": per_class, "neural_cleanse": cleanse,
                  "skipped": dict(result.skipped)},
        charts=[Chart(title="Suspicion scores by detector (scaled to [0, 1])", kind="hist",
                      x_label="score", y_label="rows",
                      series=[Series(name=d, x=[], y=_scaled(det.scores)[::step].tolist())
                              for d, det in result.detections.items()])],
    ))
    return found


def _trigger_findings(result: AuditResult, data_y: np.ndarray, finding: Callable[..., Finding],
                      name: Callable[[int], str]) -> list[Finding]:
    """One finding per class Neural Cleanse flags, with the rows carrying its trigger: high
    when training rows carry it, medium when none does (the small trigger may be part of
    what the class looks like, or the backdoor came another way than this data)."""
    report = result.triggers
    if report is None:
        return []
    carriers = result.detections.get("neural-cleanse")
    found = []
    for c in report.targets:
        rows = (np.flatnonzero(carriers.flagged & (data_y == c)) if carriers is not None
                else np.zeros(0, dtype=int))
        carried = len(rows) > 0
        found.append(finding(
            f"backdoor-target-{int(c)}",
            f"The model has a backdoor shortcut into class {name(int(c))} (Neural Cleanse)"
            + ("" if carried else "; no training row carries it"),
            Severity.HIGH if carried else Severity.MEDIUM,
            metrics=[Metric(name="anomaly index", value=float(report.anomaly[c]), unit="MADs",
                            description=report.threshold),
                     Metric(name="trigger mask L1", value=float(report.l1_norms[c]),
                            unit="features"),
                     Metric(name="median mask L1", value=float(np.median(report.l1_norms)),
                            unit="features"),
                     Metric(name="trigger success", value=float(report.success[c]),
                            unit="fraction"),
                     Metric(name="rows carrying it", value=len(rows), unit="rows")],
            evidence={"mask_top_features": np.argsort(-report.masks[c].reshape(-1))[:10]
                      .tolist(),
                      "rows": _ranked(result, rows)},
            description="A trigger far smaller than any other class needs turns most inputs "
                        "into this class: the shortcut a backdoor teaches (Wang et al., "
                        "2019)." + ("" if carried else
                                    " No training row of the class looks like another class "
                                    "once that trigger is masked, so the shortcut may be a "
                                    "natural feature of the class, or the backdoor was put "
                                    "in another way than through this data."),
            recommendation=("Drop the suspect rows (`bastion data audit --out clean.npz`) "
                            "and retrain, or fine-tune away the trigger; check where the data "
                            "came from." if carried else
                            "Look at the trigger's features (evidence): if they are not a "
                            "natural part of this class, look for the backdoor outside this "
                            "data (the model file's origin, fine-tuning data)."),
        ))
    return found


@CHECKS.register("poisoning")
@dataclass(frozen=True, kw_only=True)
class Poisoning:
    """Backdoor clusters and label errors in the training data."""

    name: ClassVar[str] = "poisoning"
    title: ClassVar[str] = "Training data poisoning"
    owasp: ClassVar[tuple[str, ...]] = ("ML02", "ML10")
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0020", "AML.T0018")
    needs: ClassVar[tuple[Need, ...]] = ("train",)
    expected_fraction: float = 0.05
    label_error_fraction: float = 0.03
    neural_cleanse_steps: int = 150

    def applies(self, target: Target) -> bool:
        return target.train is not None and target.train.y is not None \
            and len(np.unique(target.train.y)) > 1

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        assert target.train is not None  # applies() said so
        result = audit(target.train, model=target.model, seed=ctx.seed,
                       expected_fraction=self.expected_fraction,
                       neural_cleanse_steps=self.neural_cleanse_steps)
        return audit_findings(result, target.train, check=self.name, owasp=self.owasp,
                              atlas=self.atlas, label_error_fraction=self.label_error_fraction)
