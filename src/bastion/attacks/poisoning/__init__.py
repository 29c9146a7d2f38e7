"""Poisoning attacks on training data; each returns the poisoned rows as ground truth.

``LabelFlip`` (random or class-targeted), ``BadNets`` (patch trigger) and ``Blended``
(blended trigger) take ``(x, y, generator=...)`` and return a :class:`PoisonResult`.
"""

from __future__ import annotations

from bastion.attacks.poisoning._result import PoisonResult
from bastion.attacks.poisoning.backdoor import BadNets, Blended
from bastion.attacks.poisoning.label_flip import LabelFlip

__all__ = ["BadNets", "Blended", "LabelFlip", "PoisonResult"]
