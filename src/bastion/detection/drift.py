"""Feature drift: is a window of recent inputs drawn from the reference distribution?

Two tests, both called as ``test(reference, x) -> DriftResult``:

* :class:`KSDrift` runs a two-sample Kolmogorov–Smirnov test on every feature and
  corrects for testing many features at once, with Bonferroni (family-wise error
  ``alpha``) or Benjamini–Hochberg (false discovery rate ``alpha``). It sees shifts in
  one feature's marginal, and says which features moved.
* :class:`MMDDrift` is the kernel two-sample test of Gretton et al. (JMLR 2012): the
  unbiased estimate of the squared maximum mean discrepancy under a Gaussian kernel
  (bandwidth by the median heuristic on the pooled sample), with a permutation p-value.
  It sees changes in the joint distribution that leave every marginal alone.

Rows of any shape are flattened to feature vectors. Inputs are never stored in results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError

__all__ = ["DriftResult", "KSDrift", "MMDDrift"]


@dataclass(frozen=True, kw_only=True)
class DriftResult:
    """``drift`` is True when ``p_value`` < ``alpha`` (for KS: the corrected p-value).

    ``feature_p_values`` (KS only) are the corrected per-feature p-values, so callers
    can name the features that moved.
    """

    test: str
    drift: bool
    p_value: float
    statistic: float
    alpha: float
    feature_p_values: np.ndarray | None = None

    @property
    def drifted_features(self) -> np.ndarray:
        if self.feature_p_values is None:
            return np.zeros(0, dtype=np.intp)
        return np.flatnonzero(self.feature_p_values < self.alpha)


def _pair(reference: np.ndarray, x: np.ndarray, *, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    new = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(ref) < minimum or len(new) < minimum:
        raise InvalidDataError(f"drift tests need at least {minimum} reference rows and "
                               f"{minimum} new rows (got {len(ref)} and {len(new)})")
    if ref.shape[1] != new.shape[1]:
        raise ShapeMismatchError(f"new rows have {new.shape[1]} features, the reference "
                                 f"{ref.shape[1]}; pass rows of the same kind")
    if not (np.isfinite(ref).all() and np.isfinite(new).all()):
        raise InvalidDataError("drift tests need finite values; drop NaN/inf rows first")
    return ref, new


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha={alpha} must lie in (0, 1)")


@dataclass(frozen=True, kw_only=True)
class KSDrift:
    """Per-feature Kolmogorov–Smirnov tests with a multiple-testing correction."""

    alpha: float = 0.05
    correction: Literal["bonferroni", "fdr"] = "bonferroni"

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        if self.correction not in ("bonferroni", "fdr"):
            raise ConfigError(f"correction {self.correction!r} must be 'bonferroni' or 'fdr'")

    def __call__(self, reference: np.ndarray, x: np.ndarray) -> DriftResult:
        ref, new = _pair(reference, x, minimum=2)
        result = stats.ks_2samp(ref, new, axis=0)
        raw = np.atleast_1d(np.asarray(result.pvalue, dtype=np.float64))
        # A feature constant in both samples has no evidence either way (scipy says NaN).
        raw = np.where(np.isnan(raw), 1.0, raw)
        if self.correction == "bonferroni":
            corrected = np.minimum(raw * len(raw), 1.0)
        else:
            corrected = np.asarray(stats.false_discovery_control(raw, method="bh"))
        statistic = np.nan_to_num(np.atleast_1d(np.asarray(result.statistic)), nan=0.0)
        p = float(corrected.min())
        return DriftResult(test=f"ks-{self.correction}", drift=p < self.alpha, p_value=p,
                           statistic=float(statistic.max()), alpha=self.alpha,
                           feature_p_values=corrected)


@dataclass(frozen=True, kw_only=True)
class MMDDrift:
    """Kernel MMD two-sample test, Gaussian kernel, permutation p-value.

    ``bandwidth`` None picks the median pairwise distance of the pooled sample.
    ``max_reference`` rows of the reference are used (a seeded subsample), which bounds
    the cost to ``n_permutations`` products of an ``(n + m)``-square kernel matrix.
    """

    alpha: float = 0.05
    n_permutations: int = 200
    bandwidth: float | None = None
    max_reference: int = 500

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        if self.n_permutations < 1 or self.max_reference < 2:
            raise ConfigError("n_permutations must be >= 1 and max_reference >= 2")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ConfigError(f"bandwidth={self.bandwidth} must be positive")

    def __call__(self, reference: np.ndarray, x: np.ndarray, *,
                 generator: np.random.Generator) -> DriftResult:
        ref, new = _pair(reference, x, minimum=2)
        if len(ref) > self.max_reference:
            ref = ref[np.sort(generator.choice(len(ref), self.max_reference, replace=False))]
        pooled = np.concatenate([ref, new])
        sq = (pooled**2).sum(axis=1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
        if self.bandwidth is not None:
            sigma2 = self.bandwidth**2
        else:
            off = d2[np.triu_indices(len(pooled), k=1)]
            sigma2 = float(np.median(off)) or float(off.mean()) or 1.0
        kernel = np.exp(-d2 / (2.0 * sigma2))
        n = len(ref)
        masks = np.zeros((self.n_permutations + 1, len(pooled)))
        masks[0, :n] = 1.0  # the observed split first, then random relabellings
        for row in masks[1:]:
            row[generator.permutation(len(pooled))[:n]] = 1.0
        mmd2 = _mmd2_unbiased(kernel, masks, n)
        observed = float(mmd2[0])
        p = float((1 + np.count_nonzero(mmd2[1:] >= observed)) / (1 + self.n_permutations))
        return DriftResult(test="mmd", drift=p < self.alpha, p_value=p, statistic=observed,
                           alpha=self.alpha)


def _mmd2_unbiased(kernel: np.ndarray, masks: np.ndarray, n: int) -> np.ndarray:
    """Unbiased MMD² for each 0/1 row of ``masks`` (1 = first sample, ``n`` ones per row).

    With ``z`` the mask, the within-first sum is ``zᵀKz``, the within-second sum
    ``(1-z)ᵀK(1-z)`` and the cross sum ``zᵀK(1-z)``; diagonals are removed from the
    within sums, all in one matrix product over every permutation at once.
    """
    m = kernel.shape[0] - n
    diag = np.diag(kernel)
    kz = masks @ kernel
    total = kernel.sum()
    xx = (kz * masks).sum(axis=1)
    xy = kz.sum(axis=1) - xx
    yy = total - xx - 2.0 * xy
    xx_off = xx - masks @ diag
    yy_off = yy - (1.0 - masks) @ diag
    return np.asarray(xx_off / (n * (n - 1)) + yy_off / (m * (m - 1)) - 2.0 * xy / (n * m))
