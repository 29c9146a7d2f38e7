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

import functools
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError

__all__ = [
    "PRADA",
    "FittedQueryDistribution",
    "PRADAState",
    "PRADAStatus",
    "QueryDistribution",
    "QueryDistributionState",
    "QueryDistributionStatus",
    "beta_binomial_sf_table",
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


# ``stats.shapiro`` without scipy's axis/NaN-policy wrapper, which costs ~60 µs per call
# (more than the test itself below a few hundred values): PRADA passes one finite 1-D
# array, the case the wrapper has nothing to do for.
_shapiro = getattr(stats.shapiro, "__wrapped__", stats.shapiro)
_CHUNK_FLOATS = 1 << 19  # temporaries of the distance computation stay under 4 MiB


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


class _Window:
    """The last ``size`` floats in arrival order, readable as one contiguous array (a
    deque would be converted to an array for every test)."""

    def __init__(self, size: int) -> None:
        self._data = np.empty(2 * size, dtype=np.float64)
        self._size = size
        self._start = self._end = 0

    def extend(self, values: np.ndarray) -> None:
        values = values[-self._size :]
        if self._end + len(values) > len(self._data):  # slide the kept tail to the front
            keep = self._data[max(self._start, self._end + len(values) - self._size) : self._end]
            self._data[: len(keep)] = keep
            self._start, self._end = 0, len(keep)
        self._data[self._end : self._end + len(values)] = values
        self._end += len(values)
        self._start = max(self._start, self._end - self._size)

    @property
    def values(self) -> np.ndarray:
        return self._data[self._start : self._end]


@dataclass
class _GrowingSet:
    """``G_c``, and the mean and spread of ``D_{G_c}`` kept by Welford's update (the set
    starts at {0}), so a new member costs O(1) instead of a pass over all of them."""

    points: _Rows
    n: int = 1
    mean: float = 0.0
    m2: float = 0.0
    threshold: float = 0.0

    def add(self, row: np.ndarray, distance: float) -> None:
        self.points.append(row)
        self.n += 1
        step = distance - self.mean
        self.mean += step / self.n
        self.m2 += step * (distance - self.mean)
        self.threshold = max(self.threshold, self.mean - math.sqrt(max(self.m2, 0.0) / self.n))


class PRADAState:
    """One client's PRADA stream: growing sets per class and the distance set ``D``."""

    def __init__(self, config: PRADA) -> None:
        self.config = config
        self._sets: dict[int, _GrowingSet] = {}
        self._distances = _Window(config.max_distances)
        self._n_queries = 0
        self._width: int | None = None
        self._status = PRADAStatus(n_queries=0, n_distances=0, w=None, alarm=False)

    @property
    def status(self) -> PRADAStatus:
        return self._status

    def update(self, x: np.ndarray, labels: np.ndarray) -> PRADAStatus:
        """Feed a batch of queries (any shape, flattened) and the model's predicted classes.

        The same result as feeding them one at a time, computed per class: each query's
        distance to the class's growing set is taken for the whole batch at once; only
        the (cheap) decisions run query by query, and a query that joins the set lowers
        the distances of the batch's later queries of its class.
        """
        rows = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        labels = np.asarray(labels).reshape(-1)
        if len(rows) != len(labels):
            raise ShapeMismatchError(f"{len(rows)} queries but {len(labels)} predicted classes")
        if self._width is None:
            self._width = rows.shape[1]
        elif rows.shape[1] != self._width:
            raise ShapeMismatchError(f"queries have {rows.shape[1]} features, earlier ones "
                                     f"{self._width}")
        d_min = np.zeros(len(rows))  # 0: no distance (seeds a set, or an exact repeat)
        classes: dict[int, list[int]] = {}
        for i, label in enumerate(labels.tolist()):
            classes.setdefault(int(label), []).append(i)
        for label, at in classes.items():
            self._class_batch(label, rows[at], d_min, at)
        self._distances.extend(d_min[d_min > 0.0])
        self._n_queries += len(rows)
        self._status = self._test()
        return self._status

    def _class_batch(self, label: int, rows: np.ndarray, d_min: np.ndarray,
                     at: list[int]) -> None:
        """Queries of one class, in order: their distances go to ``d_min[at]``."""
        grow = self._sets.get(label)
        first = 0
        if grow is None:
            points = _Rows(rows.shape[1])
            points.append(rows[0])
            grow = self._sets[label] = _GrowingSet(points=points)
            first = 1
        rows = rows[first:]
        sq = _min_sq_distance(rows, grow.points.rows)
        for i in range(len(rows)):
            d = math.sqrt(float(sq[i]))
            if d == 0.0:
                continue  # an exact repeat: see the module notes
            d_min[at[first + i]] = d
            if d > grow.threshold:
                grow.add(rows[i], d)
                later = rows[i + 1 :]
                np.minimum(sq[i + 1 :], ((later - rows[i]) ** 2).sum(axis=1), out=sq[i + 1 :])

    def _test(self) -> PRADAStatus:
        d = self._distances.values
        w: float | None = None
        if len(d) > self.config.min_distances:
            # d.mean() and d.std() step by step, the same operations without numpy's
            # per-call dispatch (a third of the test at a few hundred distances)
            mean = np.add.reduce(d) / len(d)
            spread = d - mean
            std = math.sqrt(np.add.reduce(spread * spread) / len(d))
            kept = d[np.abs(spread) <= self.config.outlier_std * std]
            # All-equal distances (one query repeated) are as far from normal as it gets.
            w = float(_shapiro(kept).statistic) if kept.max() > kept.min() else 0.0
        return PRADAStatus(n_queries=self._n_queries, n_distances=len(d), w=w,
                           alarm=w is not None and w < self.config.delta)


def _min_sq_distance(x: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Each row's smallest squared L2 distance to ``points``, from explicit differences
    (not the dot-product identity, whose rounding would turn exact repeats into tiny
    distances), in chunks that bound the temporary."""
    out = np.empty(len(x))
    step = max(1, _CHUNK_FLOATS // max(1, points.size))
    for start in range(0, len(x), step):
        diff = x[start : start + step, None, :] - points[None, :, :]
        # einsum sums the squares without a second temporary (~30 % faster at 10 x 150)
        out[start : start + len(diff)] = np.einsum("ijk,ijk->ij", diff, diff).min(axis=1)
    return out


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
            p = float(beta_binomial_sf_table(n, self.fitted.a, self.fitted.b)[k])
        self._status = QueryDistributionStatus(n_window=n, n_outside=k, p_value=p,
                                               alarm=p is not None and p < config.alpha)
        return self._status


@functools.lru_cache(maxsize=1024)
def beta_binomial_sf_table(n: int, a: int, b: int) -> np.ndarray:
    """``P(K >= k)`` for k = 0..n, K ~ Beta-Binomial(n, a, b), as tail sums of the pmf
    written with log-gamma functions: one vectorised pass per window length (scipy's
    ``betabinom.sf`` sums the pmf point by point, ~100 ms for n = 200, and takes
    ``1 - cdf``, which loses the small tails this test is about). Read-only: the array is
    shared by every caller."""
    k = np.arange(n + 1, dtype=np.float64)
    log_pmf = (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
               + special.betaln(k + a, n - k + b) - special.betaln(a, b))
    table = np.cumsum(np.exp(log_pmf)[::-1])[::-1]  # smallest terms first
    table /= table[0]  # P(K >= 0) = 1 exactly, not 1 give or take rounding
    table.flags.writeable = False
    return table


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
