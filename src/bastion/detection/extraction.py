"""Per-client model-extraction detectors: PRADA and a query-distribution test.

**PRADA** (Juuti et al., EuroS&P 2019, "PRADA: Protecting against DNN Model Stealing
Attacks"). Natural queries sit at distances from each other that are roughly normally
distributed; an attacker who synthesises queries (Papernot's Jacobian augmentation,
small steps from a few seeds) produces a distance distribution with a spike of small
steps and a tail of larger ones. For each client and each predicted class ``c``, PRADA
keeps a *growing set* ``G_c``. A new query ``x`` predicted as ``c`` has distance
``d_min = min_{y in G_c} ||x - y||_2``; ``d_min`` joins the client's distance set ``D``.
If ``d_min`` exceeds the class threshold ``T_c``, ``x`` joins ``G_c``, ``d_min`` joins
``D_{G_c}`` (which starts at ``{0}``) and ``T_c = max(T_c, mean(D_{G_c}) - std(D_{G_c}))``.
Once ``D`` holds more than ``min_distances`` values, distances more than ``outlier_std``
standard deviations from the mean are set aside and the Shapiro–Wilk statistic ``W`` of
the rest is computed; ``W < delta`` raises the alarm. Two bounds the paper does not
have: an exact repeat of an earlier query (``d_min = 0``) adds no distance, since it
teaches an attacker nothing and honest clients repeat queries; and ``D`` keeps the last
``max_distances`` (5,000, the range the Shapiro–Wilk approximation covers), so a
long-lived client costs bounded time per query.

**Query-distribution test** (a conformal k-nearest-neighbour test, bastion's own
construction). The training data is split into an index half and a calibration half.
A query is *outside* when its distance to its k-th nearest index record exceeds the
``r``-th smallest calibration distance, ``r = ceil((1 - alpha_query)(n_cal + 1))`` (the
conformal quantile). For a client that samples the training distribution the chance of
that, given the calibration draw, is ``π ~ Beta(n_cal + 1 - r, r)`` (mean about
``alpha_query``); the queries share one π, so the count of outside queries among the
client's last ``window`` is Beta-Binomial, not Binomial, and is tested against that
distribution (one-sided). A plain binomial test would be overconfident with a small
calibration set. Random or synthetic queries fall off the data and give tiny p-values.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError

__all__ = [
    "PRADA",
    "FittedQueryDistribution",
    "PRADAState",
    "PRADAStatus",
    "QueryDistribution",
    "QueryDistributionState",
    "QueryDistributionStatus",
]


@dataclass(frozen=True, kw_only=True)
class PRADAStatus:
    """Where a client's stream stands: ``w`` is None until enough distances exist."""

    n_queries: int
    n_distances: int
    w: float | None
    alarm: bool


@dataclass(frozen=True, kw_only=True)
class PRADA:
    """PRADA's hyper-parameters; :meth:`state` starts one client's stream."""

    delta: float = 0.95
    min_distances: int = 100
    outlier_std: float = 3.0
    max_distances: int = 5000

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ConfigError(f"PRADA delta={self.delta} must lie in (0, 1)")
        if self.min_distances < 3 or self.outlier_std <= 0:
            raise ConfigError("PRADA needs min_distances >= 3 and outlier_std > 0")
        if self.max_distances <= self.min_distances:
            raise ConfigError("PRADA max_distances must exceed min_distances")

    def state(self) -> PRADAState:
        return PRADAState(self)


class _Rows:
    """An append-only float matrix with amortised O(1) appends (growing sets)."""

    def __init__(self, width: int) -> None:
        self._data = np.empty((8, width), dtype=np.float64)
        self.n = 0

    def append(self, row: np.ndarray) -> None:
        if self.n == len(self._data):
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self.n] = row
        self.n += 1

    @property
    def rows(self) -> np.ndarray:
        return self._data[: self.n]


@dataclass
class _GrowingSet:
    points: _Rows
    distances: list[float] = field(default_factory=lambda: [0.0])
    threshold: float = 0.0


class PRADAState:
    """One client's PRADA stream: growing sets per class and the distance set ``D``."""

    def __init__(self, config: PRADA) -> None:
        self.config = config
        self._sets: dict[int, _GrowingSet] = {}
        self._distances: deque[float] = deque(maxlen=config.max_distances)
        self._n_queries = 0
        self._width: int | None = None
        self._status = PRADAStatus(n_queries=0, n_distances=0, w=None, alarm=False)

    @property
    def status(self) -> PRADAStatus:
        return self._status

    def update(self, x: np.ndarray, labels: np.ndarray) -> PRADAStatus:
        """Feed a batch of queries (any shape, flattened) and the model's predicted classes."""
        rows = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        labels = np.asarray(labels).reshape(-1)
        if len(rows) != len(labels):
            raise ShapeMismatchError(f"{len(rows)} queries but {len(labels)} predicted classes")
        if self._width is None:
            self._width = rows.shape[1]
        elif rows.shape[1] != self._width:
            raise ShapeMismatchError(f"queries have {rows.shape[1]} features, earlier ones "
                                     f"{self._width}")
        for row, label in zip(rows, labels, strict=True):
            self._one(row, int(label))
        self._n_queries += len(rows)
        self._status = self._test()
        return self._status

    def _one(self, row: np.ndarray, label: int) -> None:
        grow = self._sets.get(label)
        if grow is None:
            points = _Rows(len(row))
            points.append(row)
            self._sets[label] = _GrowingSet(points=points)
            return
        d_min = float(np.sqrt(((grow.points.rows - row) ** 2).sum(axis=1).min()))
        if d_min == 0.0:
            return  # an exact repeat: see the module notes
        self._distances.append(d_min)
        if d_min > grow.threshold:
            grow.points.append(row)
            grow.distances.append(d_min)
            spread = np.asarray(grow.distances)
            grow.threshold = max(grow.threshold, float(spread.mean() - spread.std()))

    def _test(self) -> PRADAStatus:
        d = np.asarray(self._distances)
        w: float | None = None
        if len(d) > self.config.min_distances:
            kept = d[np.abs(d - d.mean()) <= self.config.outlier_std * d.std()]
            # All-equal distances (one query repeated) are as far from normal as it gets.
            w = float(stats.shapiro(kept).statistic) if np.ptp(kept) > 0 else 0.0
        return PRADAStatus(n_queries=self._n_queries, n_distances=len(d), w=w,
                           alarm=w is not None and w < self.config.delta)


@dataclass(frozen=True, kw_only=True)
class QueryDistributionStatus:
    """``p_value`` of the Beta-Binomial test on the client's recent queries (None: too few)."""

    n_window: int
    n_outside: int
    p_value: float | None
    alarm: bool


@dataclass(frozen=True, kw_only=True)
class QueryDistribution:
    """The conformal kNN test's hyper-parameters; :meth:`fit` learns the training data."""

    k: int = 1
    alpha_query: float = 0.05
    alpha: float = 1e-3
    window: int = 200
    min_queries: int = 30

    def __post_init__(self) -> None:
        if self.k < 1 or self.window < 1 or self.min_queries < 1:
            raise ConfigError("k, window and min_queries must be at least 1")
        if not (0.0 < self.alpha_query < 1.0 and 0.0 < self.alpha < 1.0):
            raise ConfigError("alpha_query and alpha must lie in (0, 1)")

    def fit(self, train: np.ndarray, *, generator: np.random.Generator) -> FittedQueryDistribution:
        """Split ``train`` (seeded) into index and calibration halves and set the cut."""
        rows = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
        if len(rows) < 2 * (self.k + 1) or not np.isfinite(rows).all():
            raise InvalidDataError(f"the query-distribution test needs at least "
                                   f"{2 * (self.k + 1)} finite training rows")
        order = generator.permutation(len(rows))
        half = len(rows) // 2
        index, calibration = rows[order[:half]], rows[order[half:]]
        scores = np.sort(_knn_distance(index, calibration, self.k))
        rank = math.ceil((1.0 - self.alpha_query) * (len(scores) + 1))
        if rank > len(scores):
            raise InvalidDataError(f"alpha_query={self.alpha_query} needs more than "
                                   f"{len(scores)} calibration rows; give more training rows")
        return FittedQueryDistribution(config=self, index=index, cut=float(scores[rank - 1]),
                                       a=len(scores) + 1 - rank, b=rank)


@dataclass(frozen=True)
class FittedQueryDistribution:
    """The index records, the distance beyond which a query counts as outside, and the
    Beta(a, b) law of the chance that a natural query does."""

    config: QueryDistribution
    index: np.ndarray = field(repr=False)
    cut: float
    a: int
    b: int

    def outside(self, x: np.ndarray) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if rows.shape[1] != self.index.shape[1]:
            raise ShapeMismatchError(f"queries have {rows.shape[1]} features, the training "
                                     f"data {self.index.shape[1]}")
        return np.asarray(_knn_distance(self.index, rows, self.config.k) > self.cut)

    def state(self) -> QueryDistributionState:
        return QueryDistributionState(self)


class QueryDistributionState:
    """One client's recent queries as outside/inside flags, and the test on them."""

    def __init__(self, fitted: FittedQueryDistribution) -> None:
        self.fitted = fitted
        self._flags: deque[bool] = deque(maxlen=fitted.config.window)
        self._status = QueryDistributionStatus(n_window=0, n_outside=0, p_value=None,
                                               alarm=False)

    @property
    def status(self) -> QueryDistributionStatus:
        return self._status

    def update(self, x: np.ndarray) -> QueryDistributionStatus:
        self._flags.extend(bool(f) for f in self.fitted.outside(x))
        config = self.fitted.config
        n, k = len(self._flags), sum(self._flags)
        p = None
        if n >= config.min_queries:
            p = float(stats.betabinom.sf(k - 1, n, self.fitted.a, self.fitted.b))
        self._status = QueryDistributionStatus(n_window=n, n_outside=k, p_value=p,
                                               alarm=p is not None and p < config.alpha)
        return self._status


def _knn_distance(index: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of ``x`` to its k-th nearest row of ``index`` (chunked)."""
    out = np.empty(len(x))
    sq_index = (index**2).sum(axis=1)
    for start in range(0, len(x), 512):
        part = x[start : start + 512]
        d2 = (part**2).sum(axis=1)[:, None] + sq_index[None, :] - 2.0 * part @ index.T
        kth = np.partition(np.maximum(d2, 0.0), k - 1, axis=1)[:, k - 1]
        out[start : start + 512] = np.sqrt(kth)
    return out
