"""Output hardening: answer with less than the full probability vector.

Extraction (Tramèr et al. 2016, Knockoff Nets) and membership inference attacks feed on
confidence scores; returning only the top classes, coarsened probabilities or just the
label raises their query cost or defeats score-based variants outright, while leaving
the prediction itself unchanged. Usable on its own, and per role in the gateway.

=========  ==========================================================================
mode       what a row of the answer holds
=========  ==========================================================================
full       ``label`` and every class probability
top-k      ``label`` and the ``k`` most likely classes with their probabilities
rounded    ``label`` and every probability rounded to ``digits`` decimals
label      ``label`` only
=========  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from bastion.errors import ConfigError, InvalidDataError

__all__ = ["OUTPUT_MODES", "OutputMode", "OutputPolicy", "harden"]

OutputMode = Literal["full", "top-k", "rounded", "label"]
OUTPUT_MODES: tuple[str, ...] = get_args(OutputMode)


@dataclass(frozen=True, kw_only=True)
class OutputPolicy:
    """How much of a prediction to reveal."""

    mode: OutputMode = "label"
    k: int = 3
    digits: int = 2

    def __post_init__(self) -> None:
        if self.mode not in OUTPUT_MODES:
            raise ConfigError(f"output mode {self.mode!r} is unknown; use one of {OUTPUT_MODES}")
        if self.k < 1:
            raise ConfigError(f"top-k needs k >= 1, got {self.k}")
        if not 0 <= self.digits <= 8:
            raise ConfigError(f"rounded output needs 0 <= digits <= 8, got {self.digits}")

    def __call__(self, proba: np.ndarray) -> list[dict[str, Any]]:
        return harden(proba, self)


def harden(proba: np.ndarray, policy: OutputPolicy) -> list[dict[str, Any]]:
    """One JSON-ready dict per row of ``proba`` (shape ``(n, n_classes)``)."""
    if proba.ndim != 2 or proba.shape[1] == 0:
        raise InvalidDataError(f"probabilities must be (n, n_classes), got shape {proba.shape}")
    # Whole arrays to Python numbers at once (tolist), not value by value: a request's
    # answer is built on the gateway's request path.
    labels = proba.argmax(axis=1).tolist()
    if policy.mode == "label":
        return [{"label": y} for y in labels]
    if policy.mode == "top-k":
        k = min(policy.k, proba.shape[1])
        # argsort on the negated scores, stable, so ties keep the lower class first
        top = np.argsort(-proba, axis=1, kind="stable")[:, :k].tolist()
        return [
            {"label": y, "top_k": [{"label": c, "probability": row[c]} for c in classes]}
            for y, classes, row in zip(labels, top, proba.tolist(), strict=True)
        ]
    shown = np.round(proba, policy.digits) if policy.mode == "rounded" else proba
    return [{"label": y, "probabilities": row}
            for y, row in zip(labels, shown.tolist(), strict=True)]
