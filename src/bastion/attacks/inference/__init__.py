"""Inference attacks: what a model reveals about its training data.

Membership inference (:func:`audit_membership` with :class:`LossThreshold`,
:class:`ShadowModels`, :class:`LiRA`, :class:`RMIA`) runs through the black-box
``Classifier`` only; reference models come from a :class:`TrainingRecipe`.
"""

from bastion.attacks.inference._base import MEMBERSHIP_ATTACKS, MembershipAttack, MembershipInputs
from bastion.attacks.inference._references import (
    EntryPointRecipe,
    ReferenceModels,
    SklearnRecipe,
    TrainingRecipe,
    train_references,
)
from bastion.attacks.inference._result import MembershipResult, measure
from bastion.attacks.inference.audit import MembershipAudit, audit_membership
from bastion.attacks.inference.lira import LiRA
from bastion.attacks.inference.rmia import RMIA
from bastion.attacks.inference.shadow import ShadowModels
from bastion.attacks.inference.threshold import LossThreshold

__all__ = [
    "MEMBERSHIP_ATTACKS",
    "RMIA",
    "EntryPointRecipe",
    "LiRA",
    "LossThreshold",
    "MembershipAttack",
    "MembershipAudit",
    "MembershipInputs",
    "MembershipResult",
    "ReferenceModels",
    "ShadowModels",
    "SklearnRecipe",
    "TrainingRecipe",
    "audit_membership",
    "measure",
    "train_references",
]
