"""Likelihood-ratio attack, LiRA (Carlini et al., 2022, "Membership Inference Attacks
From First Principles").

For each record, the logit-scaled confidence ``φ = log(p_y / (1 - p_y))`` of models
trained with it (IN) and without it (OUT) is close to Gaussian. Online LiRA fits both
Gaussians from the reference models and scores the target's ``φ`` by the likelihood
ratio ``log N(φ; μ_in, σ_in²) - log N(φ; μ_out, σ_out²)``. Offline LiRA uses only OUT
models and a one-sided test: how far ``φ`` lies above the OUT distribution, scored as
``-log Pr[Z > φ]``, ``Z ~ N(μ_out, σ_out²)`` (monotone in the paper's ``1 - Pr[Z > φ]``,
with resolution in the tail that matters at low FPR).

With few reference models per record the per-record variance is noisy; the paper then
uses one global variance, which here is the pooled within-record variance. This is the
single-query LiRA (no test-time augmentations), which the paper also reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import norm

from bastion.attacks.inference._base import MEMBERSHIP_ATTACKS, MembershipInputs, logit_confidence
from bastion.attacks.inference._references import true_class_probability
from bastion.errors import ConfigError

__all__ = ["LiRA", "phi"]

# Below this many IN (or OUT) models per record, the paper's global variance is used.
_GLOBAL_VARIANCE_BELOW = 32
_MIN_STD = 1e-6


def phi(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence of each record's own label, for ``(..., n, C)`` probs."""
    p_true = true_class_probability(probs, y)
    return logit_confidence(p_true, probs.sum(axis=-1) - p_true)


@MEMBERSHIP_ATTACKS.register("lira")
@dataclass(frozen=True, kw_only=True)
class LiRA:
    """Gaussian likelihood ratio on logit-scaled confidences; ``online=False`` for offline.

    ``global_variance`` None decides by the number of reference models (global below
    32 per side, as Carlini et al. recommend).
    """

    needs_references: ClassVar[bool] = True
    needs_population: ClassVar[bool] = False
    online: bool = True
    global_variance: bool | None = None

    @property
    def label(self) -> str:
        return "lira-online" if self.online else "lira-offline"

    def scores(self, inputs: MembershipInputs) -> np.ndarray:
        refs = inputs.references
        if refs is None:
            raise ConfigError(f"{self.label} needs reference models; give a training recipe")
        idx = inputs.evaluated
        y = inputs.y[idx]
        target = phi(inputs.probs[idx], y)
        ref = phi(refs.probs[:, idx], y)  # (K, n)
        in_mask = refs.in_mask[:, idx]
        mu_out, sd_out = self._fit(ref, ~in_mask)
        if not self.online:
            return np.asarray(-norm.logsf(target, mu_out, sd_out), dtype=np.float64)
        mu_in, sd_in = self._fit(ref, in_mask)
        return np.asarray(
            norm.logpdf(target, mu_in, sd_in) - norm.logpdf(target, mu_out, sd_out),
            dtype=np.float64,
        )

    def _fit(self, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-record mean and std of ``values`` where ``mask`` (column-wise)."""
        count = mask.sum(axis=0)
        if count.min() < 2:
            raise ConfigError(
                f"{self.label} needs at least 2 IN and 2 OUT reference models per record; "
                "raise n_references to 4 or more"
            )
        mean = np.where(mask, values, 0.0).sum(axis=0) / count
        sq = np.where(mask, (values - mean) ** 2, 0.0)
        use_global = (
            count.min() < _GLOBAL_VARIANCE_BELOW
            if self.global_variance is None
            else self.global_variance
        )
        if use_global:
            std = np.full_like(mean, np.sqrt(sq.sum() / (count - 1).sum()))
        else:
            std = np.sqrt(sq.sum(axis=0) / (count - 1))
        return mean, np.maximum(std, _MIN_STD)
