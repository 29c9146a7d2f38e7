"""Backdoor poisoning: stamp a trigger on a few rows and relabel them ``target``.

BadNets (Gu et al., 2017) pastes a fixed patch; the blended attack (Chen et al., 2017)
mixes a full-size pattern in with weight ``alpha`` so the trigger is harder to see. On
images (``(n, H, W)`` or ``(n, C, H, W)``) the patch sits in the bottom-right corner; on
tabular rows it is ``patch_size`` chosen features set to the trigger value. Rows already
labelled ``target`` are not used, so every poisoned row teaches the shortcut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.attacks.poisoning._result import PoisonResult, choose_rows
from bastion.errors import InvalidDataError

__all__ = ["BadNets", "Blended", "trigger_mask"]


def trigger_mask(sample_shape: tuple[int, ...], patch_size: int, *,
                 image: bool) -> np.ndarray:
    """Where the BadNets trigger goes, as a boolean array of ``sample_shape``.

    Images: a ``patch_size`` x ``patch_size`` square in the bottom-right corner of the last
    two axes, in every channel. Tabular: the last ``patch_size`` features.
    """
    mask = np.zeros(sample_shape, dtype=bool)
    if image:
        if len(sample_shape) < 2 or min(sample_shape[-2:]) < patch_size:
            raise InvalidDataError(f"a {patch_size}x{patch_size} patch does not fit images "
                                   f"of shape {sample_shape}; lower patch_size")
        mask[..., -patch_size:, -patch_size:] = True
    else:
        flat = mask.reshape(-1)
        if flat.size < patch_size:
            raise InvalidDataError(f"a trigger on {patch_size} features does not fit rows "
                                   f"of {flat.size}; lower patch_size")
        flat[-patch_size:] = True
    return mask


def _stamp(x: np.ndarray, y: np.ndarray, target: int, fraction: float,
           generator: np.random.Generator, pattern: np.ndarray,
           weight: np.ndarray) -> PoisonResult:
    """Blend ``pattern`` into the chosen rows with per-feature ``weight``; relabel them."""
    idx = choose_rows(np.flatnonzero(y != target), fraction, len(y), generator)
    x_out = np.array(x, copy=True)
    x_out[idx] = ((1 - weight) * x_out[idx] + weight * pattern).astype(x_out.dtype)
    y_out = np.array(y, copy=True)
    y_out[idx] = target
    return PoisonResult(x=x_out, y=y_out, indices=idx, target=target)


@dataclass(frozen=True, kw_only=True)
class BadNets:
    """BadNets patch trigger (Gu et al., 2017). ``value`` is the patch's feature value."""

    target: int = 0
    fraction: float = 0.05
    patch_size: int = 3
    value: float = 1.0
    image: bool = True

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Stamp the trigger on ``x`` (for measuring attack success at test time)."""
        mask = trigger_mask(x.shape[1:], self.patch_size, image=self.image)
        return np.where(mask, np.asarray(self.value, dtype=x.dtype), x)

    def __call__(self, x: np.ndarray, y: np.ndarray, *,
                 generator: np.random.Generator) -> PoisonResult:
        mask = trigger_mask(x.shape[1:], self.patch_size, image=self.image)
        return _stamp(x, y, self.target, self.fraction, generator,
                      np.full(x.shape[1:], self.value), mask.astype(np.float64))


@dataclass(frozen=True, kw_only=True)
class Blended:
    """Blended trigger (Chen et al., 2017): ``(1 - alpha) x + alpha * pattern``.

    The pattern is uniform noise in ``bounds`` drawn once from ``pattern_seed`` so the same
    trigger can be applied again at test time.
    """

    target: int = 0
    fraction: float = 0.05
    alpha: float = 0.2
    pattern_seed: int = 0
    bounds: tuple[float, float] = (0.0, 1.0)

    def pattern(self, sample_shape: tuple[int, ...]) -> np.ndarray:
        """The fixed noise pattern for samples of this shape."""
        return np.random.default_rng(self.pattern_seed).uniform(*self.bounds, size=sample_shape)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Blend the trigger into ``x`` (for measuring attack success at test time)."""
        return ((1 - self.alpha) * x + self.alpha * self.pattern(x.shape[1:])).astype(x.dtype)

    def __call__(self, x: np.ndarray, y: np.ndarray, *,
                 generator: np.random.Generator) -> PoisonResult:
        if not 0.0 < self.alpha <= 1.0:
            raise InvalidDataError(f"alpha {self.alpha} is outside (0, 1]; pass e.g. 0.2")
        return _stamp(x, y, self.target, self.fraction, generator,
                      self.pattern(x.shape[1:]), np.full(x.shape[1:], self.alpha))
