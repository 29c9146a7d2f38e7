"""The masked neighbour vote shared by the backdoor detectors that name a trigger.

A row carrying a dirty-label trigger is, once the trigger's features are masked, an
ordinary row of its source class: most of its nearest rows carry another label. An
honest row keeps neighbours of its own label. Poison from the same source class vouches
for itself (its rows are each other's neighbours, all with the target label), so the
vote is repeated without the rows already caught until no new row is caught.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = ["masked_neighbours", "masked_vote", "trigger_vote"]

_MAX_REVOTES = 5


def masked_neighbours(x: np.ndarray, keep: np.ndarray, rows: np.ndarray,
                      reference: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest ``reference`` rows of each of ``rows`` on the ``keep`` features,
    the row itself excluded."""
    k = min(k, len(reference) - 1)
    masked = x[:, keep]
    index = NearestNeighbors(n_neighbors=k + 1).fit(masked[reference])
    _, near = index.kneighbors(masked[rows])
    neighbours = reference[near]
    first_not_self = np.argsort(neighbours == rows[:, None], axis=1, kind="stable")[:, :k]
    return np.asarray(np.take_along_axis(neighbours, first_not_self, axis=1))


def _disagreement(x: np.ndarray, labels: np.ndarray, keep: np.ndarray, rows: np.ndarray,
                  reference: np.ndarray, k: int) -> np.ndarray:
    near = masked_neighbours(x, keep, rows, reference, k)
    return np.asarray((labels[near] != labels[rows][:, None]).mean(axis=1))


def masked_vote(x: np.ndarray, labels: np.ndarray, keep: np.ndarray, rows: np.ndarray,
                k: int, *, revote: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``rows``: the share of its ``k`` nearest rows (features outside ``keep``
    masked) with another label, and whether the row is caught (share above one half)."""
    everyone = np.arange(len(x))
    disagree = _disagreement(x, labels, keep, rows, everyone, k)
    caught = disagree > 0.5
    for _ in range(_MAX_REVOTES if revote else 0):
        trusted = np.setdiff1d(everyone, rows[caught])
        disagree = _disagreement(x, labels, keep, rows, trusted, k)
        if not (disagree > 0.5)[~caught].any():
            break
        caught |= disagree > 0.5
    return disagree, caught


def trigger_vote(x: np.ndarray, labels: np.ndarray, keep: np.ndarray, rows: np.ndarray,
                 k: int, min_share: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`masked_vote` for rows suspected of carrying one trigger (the features outside
    ``keep``). Unless at least ``min_share`` of ``rows`` are caught at once, none is: the
    masked features are then taken for part of what the class looks like. Otherwise the
    mask grows by every feature where the caught rows differ from their nearest rows of
    other labels by at least half the largest such difference (a detector may name only
    part of a trigger), and the vote is taken again on the grown mask."""
    disagree, caught = masked_vote(x, labels, keep, rows, k, revote=False)
    if caught.mean() < min_share:
        return disagree, np.zeros(len(rows), dtype=bool)
    others = np.flatnonzero(labels != labels[rows[0]])
    near = masked_neighbours(x, keep, rows[caught], others, k)
    deviation = np.abs(x[rows[caught]] - x[near].mean(axis=1)).mean(axis=0)
    return masked_vote(x, labels, keep & (deviation < 0.5 * deviation.max()), rows, k)
