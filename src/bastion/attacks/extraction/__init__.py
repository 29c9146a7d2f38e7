"""Model extraction: steal a functional copy through the black-box ``Classifier``.

:func:`extract_model` runs a query strategy (:class:`RandomQueries`,
:class:`JacobianAugmentation`, :class:`KnockoffNets`) under a query budget and reports
the surrogate's fidelity and accuracy against queries spent.
"""

from bastion.attacks.extraction._base import STRATEGIES, ExtractionState, QueryStrategy
from bastion.attacks.extraction._surrogate import mlp_surrogate, train_surrogate
from bastion.attacks.extraction.extract import ExtractionResult, ExtractionStep, extract_model
from bastion.attacks.extraction.jacobian import JacobianAugmentation
from bastion.attacks.extraction.knockoff import KnockoffNets
from bastion.attacks.extraction.random_queries import RandomQueries

__all__ = [
    "STRATEGIES",
    "ExtractionResult",
    "ExtractionState",
    "ExtractionStep",
    "JacobianAugmentation",
    "KnockoffNets",
    "QueryStrategy",
    "RandomQueries",
    "extract_model",
    "mlp_surrogate",
    "train_surrogate",
]
