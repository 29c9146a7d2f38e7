"""Label flipping (Biggio et al., 2012; Xiao et al., 2012): change the labels of a few rows.

Untargeted (``target=None``): each chosen row gets a different label drawn uniformly.
Class-targeted: rows of ``source`` (or of any other class when ``source`` is None) are
relabelled ``target`` — the attacker wants one class to absorb another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.attacks.poisoning._result import PoisonResult, choose_rows
from bastion.errors import InvalidDataError

__all__ = ["LabelFlip"]


@dataclass(frozen=True, kw_only=True)
class LabelFlip:
    """Flip ``fraction`` of all labels, at random or from ``source`` to ``target``."""

    fraction: float = 0.05
    source: int | None = None
    target: int | None = None

    def __call__(self, x: np.ndarray, y: np.ndarray, *,
                 generator: np.random.Generator) -> PoisonResult:
        y = np.asarray(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise InvalidDataError("label flipping needs at least two classes in y")
        if self.target is None:
            idx = choose_rows(np.arange(len(y)), self.fraction, len(y), generator)
            # Shift by 1..k-1 positions in the class list: always a different label.
            pos = np.searchsorted(classes, y[idx])
            shift = generator.integers(1, len(classes), size=len(idx))
            new = classes[(pos + shift) % len(classes)]
        else:
            eligible = y != self.target if self.source is None else y == self.source
            idx = choose_rows(np.flatnonzero(eligible), self.fraction, len(y), generator)
            new = np.full(len(idx), self.target, dtype=y.dtype)
        y_out = y.copy()
        y_out[idx] = new
        return PoisonResult(x=np.array(x, copy=True), y=y_out, indices=idx,
                            target=self.target)
