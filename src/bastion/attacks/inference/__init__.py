"""Inference attacks: what a model reveals about its training data.

Membership inference (:func:`audit_membership` with :class:`LossThreshold`,
:class:`ShadowModels`, :class:`LiRA`, :class:`RMIA`) runs through the black-box
``Classifier`` only; reference models come from a :class:`TrainingRecipe`. Model
inversion (:class:`MIFace`) reconstructs class representatives, white- or black-box;
:func:`attribute_inference` guesses a sensitive column against an imputation baseline.
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
from bastion.attacks.inference.attribute import AttributeResult, attribute_inference
from bastion.attacks.inference.audit import MembershipAudit, audit_membership
from bastion.attacks.inference.inversion import (
    InversionResult,
    MIFace,
    ReconstructionQuality,
    reconstruction_quality,
)
from bastion.attacks.inference.lira import LiRA
from bastion.attacks.inference.rmia import RMIA
from bastion.attacks.inference.shadow import ShadowModels
from bastion.attacks.inference.threshold import LossThreshold

__all__ = [
    "MEMBERSHIP_ATTACKS",
    "RMIA",
    "AttributeResult",
    "EntryPointRecipe",
    "InversionResult",
    "LiRA",
    "LossThreshold",
    "MIFace",
    "MembershipAttack",
    "MembershipAudit",
    "MembershipInputs",
    "MembershipResult",
    "ReconstructionQuality",
    "ReferenceModels",
    "ShadowModels",
    "SklearnRecipe",
    "TrainingRecipe",
    "attribute_inference",
    "audit_membership",
    "measure",
    "reconstruction_quality",
    "train_references",
]
