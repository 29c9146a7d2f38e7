"""Attribute inference on tabular data (Fredrikson et al., 2014, "Privacy in
Pharmacogenetics"), measured against imputation without the model.

The attacker knows a training record except one sensitive column, and its label. For
each candidate value ``v`` of the column it queries the model on the completed record
and picks the value maximising ``f_y(x_{-s}, v) · Pr(v)`` (the model's probability of
the known label times the value's prior). Jayaraman and Evans (2022, "Are Attribute
Inference Attacks Just Imputation?") showed that much of this "leak" is what anyone
could guess from the other columns, so the result is compared with a baseline that
never touches the model: a classifier trained on the attacker's own data to predict the
column from the other columns and the label. Only the gap is the model's fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bastion.data.dataset import Dataset
from bastion.errors import ConfigError, InvalidDataError
from bastion.typing import Classifier

__all__ = ["AttributeResult", "attribute_inference", "column_index"]

_MAX_VALUES = 20


@dataclass(frozen=True, kw_only=True)
class AttributeResult:
    """Accuracy of guessing the sensitive column, with and without the model."""

    column: str
    attack_accuracy: float
    baseline_accuracy: float
    majority_accuracy: float
    n_records: int
    n_queries: int

    @property
    def advantage(self) -> float:
        """What the model adds over imputation (≤ 0: nothing)."""
        return self.attack_accuracy - self.baseline_accuracy


def column_index(data: Dataset, column: int | str) -> int:
    """The position of ``column`` (a name from ``feature_names`` or an index)."""
    n = int(np.prod(data.x.shape[1:]))
    if data.x.ndim != 2:
        raise InvalidDataError("attribute inference needs tabular data (one row per record)")
    if isinstance(column, str):
        if column not in data.feature_names:
            known = ", ".join(data.feature_names[:10]) or "none (give an index)"
            raise ConfigError(f"no column named {column!r}; known columns: {known}")
        return data.feature_names.index(column)
    if not 0 <= column < n:
        raise ConfigError(f"column index {column} is out of range 0..{n - 1}")
    return column


def _default_baseline() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=100)


def attribute_inference(
    model: Classifier,
    targets: Dataset,
    auxiliary: Dataset,
    column: int | str,
    *,
    baseline: Any = None,
    seed: int = 0,
) -> AttributeResult:
    """Infer ``column`` of every record in ``targets``; the attacker's own data is ``auxiliary``.

    The column must be categorical (at most 20 distinct values in ``auxiliary``); the
    candidates and their prior come from ``auxiliary``. Queries: one per candidate value
    per target record.
    """
    from sklearn.base import clone

    if targets.y is None or auxiliary.y is None:
        raise InvalidDataError("attribute inference needs labels for the targets and aux data")
    s = column_index(targets, column)
    name = targets.feature_names[s] if targets.feature_names else str(s)
    aux_x = np.asarray(auxiliary.x, dtype=np.float64)
    values, counts = np.unique(aux_x[:, s], return_counts=True)
    if len(values) > _MAX_VALUES:
        raise ConfigError(
            f"column {name!r} has {len(values)} distinct values; attribute inference needs a "
            f"categorical column (at most {_MAX_VALUES} values)"
        )
    if len(targets) == 0 or len(values) < 2:
        raise InvalidDataError(f"need target records and at least 2 values of column {name!r}")
    prior = counts / counts.sum()
    x = np.asarray(targets.x, dtype=np.float64)
    y = np.asarray(targets.y).astype(np.int64)
    truth = x[:, s]

    # One batch: every record completed with every candidate value.
    trial = np.repeat(x[None], len(values), axis=0)
    trial[:, :, s] = values[:, None]
    before = model.n_queries
    probs = np.asarray(model.predict_proba(
        trial.reshape(-1, x.shape[1]).astype(targets.x.dtype, copy=False)))
    n_queries = model.n_queries - before
    p_label = probs.reshape(len(values), len(x), -1)[:, np.arange(len(x)), y]
    guess = values[np.argmax(p_label * prior[:, None], axis=0)]

    imputer = clone(_default_baseline() if baseline is None else baseline)
    params = {k: seed for k in imputer.get_params() if k.endswith("random_state")}
    imputer.set_params(**params)
    rest = [j for j in range(x.shape[1]) if j != s]
    codes = np.searchsorted(values, aux_x[:, s])  # every aux value is in ``values``
    imputer.fit(np.column_stack([aux_x[:, rest], auxiliary.y]), codes)
    imputed = values[imputer.predict(np.column_stack([x[:, rest], y]))]
    return AttributeResult(
        column=name,
        attack_accuracy=float((guess == truth).mean()),
        baseline_accuracy=float((imputed == truth).mean()),
        majority_accuracy=float((values[np.argmax(counts)] == truth).mean()),
        n_records=len(x),
        n_queries=n_queries,
    )
