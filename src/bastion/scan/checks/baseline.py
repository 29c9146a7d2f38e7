"""``model-baseline``: how well the model does before anyone attacks it.

Accuracy, balanced accuracy, per-class recall, the most frequent confusions and the
expected calibration error (ECE, 15 equal-width confidence bins; Guo et al. 2017) on
held-out data, or on the training data with a warning when no test set is given.
Every later number (robust accuracy, membership advantage) is read against this
baseline.

Severity thresholds:

- medium: accuracy no better than always guessing the most common class, ECE above
  0.20, or a class whose recall is more than 0.30 below the mean;
- low: ECE above 0.10, or a class more than 0.15 below the mean recall;
- info: otherwise (the baseline itself, for the record).

Overconfident models (high ECE) leak more to membership inference (OWASP ML04).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bastion.data.validate import require_labels_in_range
from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

__all__ = ["ModelBaseline", "expected_calibration_error"]

_BINS = 15


def expected_calibration_error(
    proba: np.ndarray, y: np.ndarray, n_bins: int = _BINS
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """ECE and, per bin, mean confidence, accuracy and sample count."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(which, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(which, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        mean_acc = np.where(counts > 0, acc_sum / counts, np.nan)
    ece = float(np.nansum(counts / len(y) * np.abs(mean_acc - mean_conf)))
    return ece, mean_conf, mean_acc, counts


def _confusions(y: np.ndarray, pred: np.ndarray, n_classes: int,
                names: list[str]) -> list[dict[str, str | int]]:
    """The most frequent mistakes (true class, predicted class, count), worst first."""
    matrix = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes)
    matrix = matrix.reshape(n_classes, n_classes)
    np.fill_diagonal(matrix, 0)
    order = np.argsort(-matrix, axis=None, kind="stable")[:5]
    return [{"true": names[i // n_classes], "predicted": names[i % n_classes],
             "count": int(matrix.flat[i])} for i in order if matrix.flat[i]]


@CHECKS.register("model-baseline")
@dataclass(frozen=True, kw_only=True)
class ModelBaseline:
    """Accuracy, balanced accuracy, per-class recall and calibration on held-out data."""

    name: ClassVar[str] = "model-baseline"
    title: ClassVar[str] = "Model baseline quality"
    owasp: ClassVar[tuple[str, ...]] = ("ML08", "ML04")
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0031",)
    needs: ClassVar[tuple[Need, ...]] = ("model", "labels")
    ece_low: float = 0.10
    ece_medium: float = 0.20
    recall_gap_low: float = 0.15
    recall_gap_medium: float = 0.30
    batch_size: int = 1024

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        data = target.eval_data
        model = target.model
        assert data is not None and data.y is not None and model is not None
        require_labels_in_range(data, model.n_classes)
        proba = np.concatenate([model.predict_proba(data.x[i:i + self.batch_size])
                                for i in range(0, len(data), self.batch_size)])
        pred = proba.argmax(axis=1)
        y = data.y
        classes = np.arange(model.n_classes)
        support = np.bincount(y, minlength=model.n_classes)
        hits = np.bincount(y[pred == y], minlength=model.n_classes)
        present = support > 0
        recall = np.where(present, hits / np.maximum(support, 1), np.nan)
        accuracy = float((pred == y).mean())
        balanced = float(np.nanmean(recall))
        majority = float(support.max() / len(y))
        ece, conf, acc, counts = expected_calibration_error(proba, y)
        gap = balanced - np.nanmin(recall)
        severity = Severity.INFO
        if accuracy <= majority or ece > self.ece_medium or gap > self.recall_gap_medium:
            severity = Severity.MEDIUM
        elif ece > self.ece_low or gap > self.recall_gap_low:
            severity = Severity.LOW
        names = list(data.class_names) if len(data.class_names) == model.n_classes else \
            [str(c) for c in classes]
        weakest = int(np.nanargmin(recall))
        on = "held-out test data" if target.test is not None else \
            "the training data (optimistic: give --test for an honest number)"
        used = counts > 0
        return [Finding(
            id=f"{self.name}/quality", check=self.name, severity=severity,
            title=f"Accuracy {accuracy:.1%}, calibration error {ece:.3f}",
            description=f"Measured on {on}. Weakest class: {names[weakest]} "
                        f"(recall {recall[weakest]:.1%}).",
            owasp=list(self.owasp), atlas=list(self.atlas),
            metrics=[
                Metric(name="accuracy", value=accuracy, unit="ratio"),
                Metric(name="balanced accuracy", value=balanced, unit="ratio"),
                Metric(name="majority-class accuracy", value=majority, unit="ratio",
                       description="what always guessing the most common class scores"),
                Metric(name="expected calibration error", value=ece, unit="ratio",
                       description=f"{_BINS} equal-width confidence bins"),
                Metric(name="worst class recall", value=float(recall[weakest]), unit="ratio"),
                Metric(name="samples", value=len(y), unit="samples"),
            ],
            evidence={"per_class_recall": {n: None if np.isnan(r) else round(float(r), 4)
                                           for n, r in zip(names, recall, strict=True)},
                      "top_confusions": _confusions(y, pred, model.n_classes, names)},
            charts=[
                Chart(title="Recall per class", kind="bar", x_label="class", y_label="recall",
                      series=[Series(name="recall", x=names,
                                     y=np.nan_to_num(recall).tolist())]),
                Chart(title="Reliability: accuracy against confidence", kind="line",
                      x_label="mean confidence in bin", y_label="accuracy in bin",
                      series=[Series(name="model", x=conf[used].tolist(),
                                     y=acc[used].tolist()),
                              Series(name="perfect calibration", x=[0.0, 1.0],
                                     y=[0.0, 1.0])]),
            ],
            recommendation="" if severity is Severity.INFO else
            "Calibrate the model (temperature scaling on held-out data) and improve the "
            "weak classes (more data, reweighting); overconfidence also raises "
            "membership-inference risk.",
        )]
