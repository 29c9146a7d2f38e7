"""What a poisoning attack hands back: the poisoned data and its ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.errors import InvalidDataError

__all__ = ["PoisonResult", "choose_rows"]


@dataclass(frozen=True, kw_only=True)
class PoisonResult:
    """A poisoned copy of the data; ``indices`` are the rows changed (the ground truth).

    ``target`` is the label the attack pushes towards (``None`` for untargeted flips).
    The input arrays are never modified.
    """

    x: np.ndarray
    y: np.ndarray
    indices: np.ndarray
    target: int | None = None

    @property
    def mask(self) -> np.ndarray:
        """Boolean per row: True where the row was poisoned."""
        out = np.zeros(len(self.y), dtype=bool)
        out[self.indices] = True
        return out


def choose_rows(candidates: np.ndarray, fraction: float, n_total: int,
                generator: np.random.Generator) -> np.ndarray:
    """``round(fraction * n_total)`` rows drawn without replacement from ``candidates``."""
    if not 0.0 < fraction < 1.0:
        raise InvalidDataError(f"poison fraction {fraction} is outside (0, 1); "
                               "pass e.g. fraction=0.05")
    n = max(1, round(fraction * n_total))
    if n > len(candidates):
        raise InvalidDataError(f"cannot poison {n} rows: only {len(candidates)} are eligible; "
                               "lower the fraction")
    return np.sort(generator.choice(candidates, size=n, replace=False))
