"""Shadow-model membership inference (Shokri et al., 2017, "Membership Inference Attacks
Against Machine Learning Models").

Shadow models are trained like the target on data whose membership is known; their
prediction vectors on IN and OUT records become a labelled training set for one attack
classifier per class (the paper's per-class attack models). The attack classifiers are
then applied to the target's prediction vectors. The shadow models here are the shared
reference models, so one training budget serves this attack, LiRA and RMIA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from bastion.attacks.inference._base import MEMBERSHIP_ATTACKS, MembershipInputs
from bastion.errors import ConfigError

__all__ = ["ShadowModels"]


def _default_attack_model() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1)


@MEMBERSHIP_ATTACKS.register("shadow")
@dataclass(frozen=True, kw_only=True)
class ShadowModels:
    """Per-class attack classifiers trained on shadow models' prediction vectors.

    ``attack_model`` is any scikit-learn binary classifier with ``predict_proba``; it is
    cloned per class. Features are the sorted log-probabilities followed by the
    log-probability of the true class, which a tree or linear model separates better
    than raw probabilities that crowd near 0 and 1.
    """

    needs_references: ClassVar[bool] = True
    needs_population: ClassVar[bool] = False
    attack_model: Any = field(default_factory=_default_attack_model)

    @property
    def label(self) -> str:
        return "shadow"

    def scores(self, inputs: MembershipInputs) -> np.ndarray:
        from sklearn.base import clone

        refs = inputs.references
        if refs is None:
            raise ConfigError("shadow needs reference (shadow) models; give a training recipe")
        idx = inputs.evaluated
        y_eval = inputs.y[idx]
        n_models, _, n_classes = refs.probs.shape
        shadow_x = _features(refs.probs.reshape(-1, n_classes), np.tile(inputs.y, n_models))
        shadow_y = refs.in_mask.reshape(-1)
        shadow_c = np.tile(inputs.y, n_models)
        target_x = _features(inputs.probs[idx], y_eval)
        out = np.zeros(len(idx), dtype=np.float64)
        for c in np.unique(y_eval):
            rows = shadow_c == c
            model = clone(self.attack_model)
            params = {k: inputs.seed for k in model.get_params() if k.endswith("random_state")}
            model.set_params(**params)
            model.fit(shadow_x[rows], shadow_y[rows])
            here = y_eval == c
            out[here] = model.predict_proba(target_x[here])[:, list(model.classes_).index(True)]
        return out


def _features(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    logp = np.log(np.maximum(probs, 1e-300))
    own = np.take_along_axis(logp, y[:, None], axis=1)
    return np.concatenate([-np.sort(-logp, axis=1), own], axis=1)
