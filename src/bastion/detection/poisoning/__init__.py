"""Dataset detectors for poisoned and mislabeled rows.

Each is a frozen dataclass called as ``detector(features, y) -> Detection`` (per-row
scores, higher = more suspicious, and the rows flagged at its documented threshold).
``features`` are the rows as the model sees them, or a model's representations of them.
:class:`STRIP` instead screens inputs at run time against a trained model, and
:class:`NeuralCleanse` searches a trained model for a backdoor target class, and
:class:`AttributionClustering` is called as ``detector(model, features, y)``: it reads
the model's input gradients.
"""

from __future__ import annotations

from bastion.detection.poisoning._result import Detection
from bastion.detection.poisoning.activation_clustering import ActivationClustering
from bastion.detection.poisoning.attribution_clustering import AttributionClustering
from bastion.detection.poisoning.confident_learning import ConfidentLearning
from bastion.detection.poisoning.isolation import IsolationDetector
from bastion.detection.poisoning.knn import KNNLabelConsistency
from bastion.detection.poisoning.neural_cleanse import NeuralCleanse, TriggerReport
from bastion.detection.poisoning.spectral import SpectralSignatures
from bastion.detection.poisoning.strip import STRIP

__all__ = [
           "STRIP",
           "ActivationClustering",
           "AttributionClustering",
           "ConfidentLearning",
           "Detection",
           "IsolationDetector",
           "KNNLabelConsistency",
           "NeuralCleanse",
           "SpectralSignatures",
           "TriggerReport",
]
