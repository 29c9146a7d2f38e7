"""Run every dataset detector on one labelled dataset and decide which rows to drop.

A row is *suspect* when activation clustering flags it (that flag already needs a small,
well-separated cluster inside a class) or when its label looks wrong: both label
detectors (kNN label consistency and confident learning) flag it, or one of them and at
least ``min_votes`` other detectors. Spectral signatures alone always flag a fixed share
of every class, a label detector alone mistakes hard but honest rows for flips, and the
two outlier detectors (spectral, isolation forest) agreeing only say a row is odd.
Measured on digits with an MLP: one label detector plus one other flagged 2.7 % of a
clean training set (and so cost a point of accuracy after cleaning); the rule above
flags 1.1 %, and finds 85 % of 5 % random label flips instead of 93 %.

With a model, spectral signatures look at its log-probabilities (the only representation
every :class:`~bastion.typing.Classifier` exposes); the other detectors look at the
inputs. Activation clustering on log-probabilities split clean demo classes into
confident and unsure rows (silhouette above 0.40), so it stays on the inputs.

A model that gives gradients also runs attribution clustering (its flags are suspect:
the rule already needs the flagged rows to lose their label once the trigger is masked)
and is searched for a backdoor by Neural Cleanse, with ``neural_cleanse_steps``
optimisation steps (0 skips it); the rows of a flagged label that carry its reversed
trigger are suspect too (detector ``neural-cleanse``). ``triggers`` stays ``None`` when
it did not run and ``skipped`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bastion.data.dataset import Dataset
from bastion.detection.poisoning._result import Detection, check_inputs
from bastion.detection.poisoning.activation_clustering import ActivationClustering
from bastion.detection.poisoning.attribution_clustering import AttributionClustering
from bastion.detection.poisoning.confident_learning import ConfidentLearning
from bastion.detection.poisoning.isolation import IsolationDetector
from bastion.detection.poisoning.knn import KNNLabelConsistency
from bastion.detection.poisoning.neural_cleanse import (
    NeuralCleanse,
    TriggerReport,
    trigger_carriers,
)
from bastion.detection.poisoning.spectral import SpectralSignatures
from bastion.errors import ShapeMismatchError
from bastion.typing import Classifier, Differentiable

__all__ = ["AuditResult", "audit"]


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    """Each detector's output by name, and the rows judged suspect."""

    detections: dict[str, Detection] = field(default_factory=dict)
    suspect: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    triggers: TriggerReport | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def votes(self) -> np.ndarray:
        """How many detectors flag each row."""
        return np.asarray(np.sum([d.flagged for d in self.detections.values()], axis=0))

    def cleaned(self, data: Dataset) -> Dataset:
        """A copy of ``data`` without the suspect rows."""
        if data.y is None or len(data) != len(self.suspect):
            raise ShapeMismatchError(f"this audit covers {len(self.suspect)} labelled rows; "
                                     "clean the dataset it was run on")
        keep = ~self.suspect
        return Dataset(x=data.x[keep], y=data.y[keep], kind=data.kind,
                       feature_names=data.feature_names, class_names=data.class_names,
                       name=data.name)


def _representations(x: np.ndarray, y: np.ndarray, model: Classifier | None) -> np.ndarray:
    if model is None:
        return x
    if int(y.max()) >= model.n_classes or int(y.min()) < 0:
        raise ShapeMismatchError(f"labels run from {int(y.min())} to {int(y.max())} but the "
                                 f"model has {model.n_classes} classes; pass the model "
                                 "trained on this data")
    if len(np.unique(y)) != model.n_classes:
        raise ShapeMismatchError(f"the data holds {len(np.unique(y))} classes but the model "
                                 f"has {model.n_classes}; pass the model trained on this data")
    if int(np.prod(model.input_shape)) != x[0].size:
        raise ShapeMismatchError(f"rows of {x[0].size} features do not fit the model's input "
                                 f"shape {tuple(model.input_shape)}; pass the model trained "
                                 "on this data")
    proba = np.asarray(model.predict_proba(x.reshape((len(x), *model.input_shape))))
    return np.asarray(np.log(np.clip(proba, 1e-12, 1.0)))


def audit(data: Dataset, *, model: Classifier | None = None, expected_fraction: float = 0.05,
          min_votes: int = 2, neural_cleanse_steps: int = 150, seed: int = 0) -> AuditResult:
    """Score every row of ``data`` with each detector; mark the suspects."""
    x, y = check_inputs(data.x, data.y)
    reps = _representations(np.asarray(data.x), y, model)
    detections = {
        "spectral-signatures": SpectralSignatures(expected_fraction=expected_fraction)(reps, y),
        "activation-clustering": ActivationClustering(seed=seed)(x, y),
        "knn-label-consistency": KNNLabelConsistency()(x, y),
        "confident-learning": ConfidentLearning(seed=seed)(x, y),
        "isolation-forest": IsolationDetector(seed=seed)(x, y),
    }
    votes = np.sum([d.flagged for d in detections.values()], axis=0)
    knn = detections["knn-label-consistency"].flagged
    confident = detections["confident-learning"].flagged
    others = votes - knn.astype(int) - confident.astype(int)
    label_errors = (knn & confident) | ((knn | confident) & (others >= min_votes))
    suspect = detections["activation-clustering"].flagged | label_errors
    triggers, skipped = None, {}
    if model is None or not isinstance(model, Differentiable):
        why = "no model given" if model is None else "the model gives no gradients"
        skipped["attribution-clustering"] = skipped["neural-cleanse"] = why
        return AuditResult(detections=detections, suspect=suspect, skipped=skipped)
    attributed = AttributionClustering(seed=seed)(model, np.asarray(data.x), y)
    detections["attribution-clustering"] = attributed
    suspect |= attributed.flagged
    if neural_cleanse_steps <= 0:
        skipped["neural-cleanse"] = "turned off (0 steps)"
    else:
        triggers = NeuralCleanse(steps=neural_cleanse_steps, n_samples=100,
                                 seed=seed)(model, np.asarray(data.x), y)
        carriers = trigger_carriers(model, np.asarray(data.x), y, triggers)
        detections["neural-cleanse"] = carriers
        suspect |= carriers.flagged
    return AuditResult(detections=detections, suspect=suspect, triggers=triggers,
                       skipped=skipped)
