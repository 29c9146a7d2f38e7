"""Poisoning attacks on training data; each returns the poisoned rows as ground truth.

``LabelFlip`` (random or class-targeted), ``AdversarialLabelFlip`` (by loss), ``BadNets``
(patch trigger) and ``Blended`` (blended trigger) take ``(x, y, generator=...)``;
``FeatureCollision`` (clean-label) also takes a model and the target input. Each returns
a :class:`PoisonResult`.
"""

from __future__ import annotations

from bastion.attacks.poisoning._result import PoisonResult
from bastion.attacks.poisoning.adversarial_flip import AdversarialLabelFlip
from bastion.attacks.poisoning.backdoor import BadNets, Blended
from bastion.attacks.poisoning.clean_label import FeatureCollision
from bastion.attacks.poisoning.label_flip import LabelFlip

__all__ = ["AdversarialLabelFlip", "BadNets", "Blended", "FeatureCollision", "LabelFlip",
           "PoisonResult"]
