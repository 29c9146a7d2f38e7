"""The runtime monitor's statistics: what it computes from a batch of served requests.

A :class:`Scorer` holds the monitor's per-client and drift state and turns each
:class:`Batch` of requests that waited together into alarms. It knows nothing of
queues, threads or processes: :class:`~bastion.gateway.monitor.RuntimeMonitor` feeds it
either in a thread of the server process or, by default, in a scoring process of its
own (:mod:`bastion.gateway.scoring_process`), so that its work shares neither the GIL
nor a core's turn with the event loop.

Per batch, the scorer makes one model call for feature squeezing over every waiting
request, then, per client, on each run of up to ``client_batch`` of its rows that
waited together (as if the client had sent them as one batch: the tests behind the
score cost hundreds of µs each, too much to repeat after every request),

* adds the inputs to a sliding window of the last ``drift_window`` rows and, every
  ``drift_every`` rows but at most once per ``drift_interval_s``, tests the window
  against the reference data with per-feature KS (Bonferroni) and the kernel MMD test
  (:mod:`bastion.detection.drift`); two drifting tests in a row raise a ``drift`` alarm
  (one test at ``drift_alpha`` repeated forever would alarm by chance);
* keeps each client's last ``adversarial_window`` feature-squeezing flags
  (:mod:`bastion.detection.adversarial_input`, threshold at ``squeeze_fpr`` of clean
  reference inputs);
* feeds the client's PRADA stream and its query-distribution test
  (:mod:`bastion.detection.extraction`).

A client's **risk score** in [0, 1] is the largest of three pieces of evidence, each 1
exactly when that detector alarms at its own documented threshold and 0 well before it:

* PRADA: ``(w_hi - W) / (w_hi - delta)`` clipped, with ``w_hi = (1 + delta) / 2``;
* query distribution and adversarial rate: p-values on a log scale, 0 at ``p >= 0.01``
  and 1 at ``p <= alpha`` (Beta-Binomial tests of the client's outside / flagged
  counts, exact given how the thresholds were calibrated).

Risk at ``throttle_at`` or above raises a ``throttle`` alarm, at ``block_at`` a ``block``
alarm, each once per client and level.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bastion.detection.adversarial_input import FeatureSqueezing, SqueezingDetector
from bastion.detection.drift import KSDrift, MMDDrift
from bastion.detection.extraction import (
    PRADA,
    FittedQueryDistribution,
    PRADAState,
    QueryDistribution,
    QueryDistributionState,
    beta_binomial_sf_table,
)
from bastion.gateway.incidents.alarm import Alarm, Kind, Level
from bastion.gateway.incidents.notifiers import AlertSettings

if TYPE_CHECKING:
    from bastion.gateway.monitor import MonitorSettings
    from bastion.gateway.slots import ModelVersion
    from bastion.typing import Bounds

__all__ = ["P_CALM", "Batch", "Scorer", "Subject", "client_runs"]

P_CALM = 0.01  # p-values at or above this are no evidence at all

# Who a request counts against: ("token", id), or ("client", address) without a token.
Subject = tuple[str, str]


@dataclass(frozen=True)
class Batch:
    """Requests that waited together, as arrays: one pickle to ship to a scoring process.

    Request ``i`` holds rows ``offsets[i]:offsets[i + 1]`` of ``x`` and ``proba``.
    """

    version: str
    subjects: list[Subject]
    times: list[float]
    offsets: np.ndarray
    x: np.ndarray
    proba: np.ndarray

    def rows(self, requests: Sequence[int]) -> np.ndarray:
        """Row indices of these requests, in order."""
        o = self.offsets
        return np.concatenate([np.arange(o[i], o[i + 1]) for i in requests])


class _Served:
    """A model version seen as a ``Classifier`` whose calls take the version's lock."""

    def __init__(self, version: ModelVersion) -> None:
        self._version = version

    @property
    def n_classes(self) -> int:
        return self._version.model.n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self._version.model.input_shape)

    @property
    def bounds(self) -> Bounds:
        return self._version.model.bounds

    @property
    def n_queries(self) -> int:
        return self._version.model.n_queries

    def reset_queries(self) -> None:
        self._version.model.reset_queries()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._version.predict_proba(x)


@dataclass
class _Client:
    prada: PRADAState
    queries: QueryDistributionState
    flags: deque[bool]
    n_queries: int = 0
    risk: float = 0.0
    level: Level | None = None
    evidence: dict[str, float] | None = None
    last_seen: float = 0.0


def client_runs(subjects: Sequence[Subject], n_rows: Sequence[int],
                client_batch: int) -> list[tuple[Subject, list[int]]]:
    """Each client's requests (their indices, in order) cut into runs that close once
    they hold ``client_batch`` rows; what is left of each client closes the list."""
    open_runs: dict[Subject, tuple[list[int], int]] = {}
    runs: list[tuple[Subject, list[int]]] = []
    for i, (subject, n) in enumerate(zip(subjects, n_rows, strict=True)):
        indices, rows = open_runs.get(subject, ([], 0))
        indices.append(i)
        if rows + n >= client_batch:
            runs.append((subject, indices))
            open_runs.pop(subject, None)
        else:
            open_runs[subject] = (indices, rows + n)
    return runs + [(subject, indices) for subject, (indices, _) in open_runs.items()]


def _p_evidence(p: float | None, alpha: float) -> float:
    """0 at p >= 0.01, 1 at p <= alpha, linear in log p between."""
    if p is None or p >= P_CALM:
        return 0.0
    if p <= alpha:
        return 1.0
    return (math.log(P_CALM) - math.log(p)) / (math.log(P_CALM) - math.log(alpha))


class Scorer:
    """Drift, adversarial-input and extraction statistics over batches of requests.

    ``reference`` (held-out inputs the model was not trained on, flattened rows) fits
    the drift tests, the query-distribution test and the squeezing threshold. Methods
    take a lock, so one thread may score while another reads :meth:`view`.
    """

    def __init__(self, reference: np.ndarray, settings: MonitorSettings) -> None:
        # what scoring needs: alert settings (secrets among them) stay in the server
        self.settings = s = settings.model_copy(update={"alerts": AlertSettings()})
        rng = np.random.default_rng(s.seed)
        self._rng = rng
        reference = np.asarray(reference, dtype=np.float32)
        self._reference = reference.reshape(len(reference), -1)
        self._ks = KSDrift(alpha=s.drift_alpha)
        self._mmd = MMDDrift(alpha=s.drift_alpha, n_permutations=s.mmd_permutations)
        self._squeezing = FeatureSqueezing(bits=s.squeeze_bits, median_size=s.squeeze_median,
                                           fpr=s.squeeze_fpr)
        self._squeeze_reference = reference[rng.permutation(len(reference))[:500]]
        self._detectors: dict[str, SqueezingDetector] = {}
        self._prada = PRADA(delta=s.prada_delta, min_distances=s.prada_min_distances)
        self._queries: FittedQueryDistribution = QueryDistribution(
            alpha_query=s.query_alpha_query, alpha=s.query_alpha, window=s.query_window,
            min_queries=s.min_queries).fit(reference, generator=rng)
        self._clients: OrderedDict[Subject, _Client] = OrderedDict()
        self._window: deque[np.ndarray] = deque(maxlen=s.drift_window)
        self._since_drift_test = 0
        self._last_drift_test = -math.inf
        self._drifting = 0
        self._drift: deque[dict[str, float]] = deque(maxlen=s.history)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]  # a scoring process gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def observe(self, batch: Batch, version: ModelVersion) -> list[Alarm]:
        """Score one batch served by ``version``; the alarms it raises."""
        detector = self._detector(version)
        _, flagged = detector(_Served(version), batch.x, batch.proba)
        n_rows = np.diff(batch.offsets).tolist()
        alarms: list[Alarm] = []
        with self._lock:
            for subject, run in client_runs(batch.subjects, n_rows, self.settings.client_batch):
                rows = batch.rows(run)
                x, proba = batch.x[rows], batch.proba[rows]
                now = batch.times[run[-1]]
                state = self._client(subject)
                state.n_queries += len(x)
                state.last_seen = now
                state.flags.extend(flagged[rows].tolist())
                prada = state.prada.update(x, proba.argmax(axis=1))
                dist = state.queries.update(x)
                evidence = self._evidence(state, prada.w, dist.p_value, detector)
                alarms += self._judge(subject, state, evidence, now)
                alarms += self._drift_step(x, batch.version, now)
        return alarms

    def view(self, *, since: float, top: int) -> dict[str, Any]:
        """The riskiest ``top`` clients and the drift tests from ``since`` on (numbers
        only, never inputs); ``blocked`` is filled in by the monitor, which knows."""
        with self._lock:
            drift = [d for d in self._drift if d["time"] >= since]
            clients = sorted(self._clients.items(), key=lambda kv: -kv[1].risk)[:top]
            rows = [{
                "subject_kind": key[0], "subject": key[1], "risk": round(c.risk, 4),
                "level": c.level.value if c.level else "ok", "n_queries": c.n_queries,
                "last_seen": c.last_seen,
                **{k: (None if math.isnan(v) else round(v, 6))
                   for k, v in (c.evidence or {}).items()},
            } for key, c in clients]
        return {"drift": drift, "clients": rows}

    def _detector(self, version: ModelVersion) -> SqueezingDetector:
        detector = self._detectors.get(version.name)
        if detector is None:  # fitted per model version: a rollback changes the model
            detector = self._squeezing.fit(_Served(version), self._squeeze_reference)
            self._detectors[version.name] = detector
        return detector

    def _client(self, subject: Subject) -> _Client:
        state = self._clients.get(subject)
        if state is None:
            state = _Client(prada=self._prada.state(), queries=self._queries.state(),
                            flags=deque(maxlen=self.settings.adversarial_window))
            self._clients[subject] = state
            while len(self._clients) > self.settings.max_clients:
                self._clients.popitem(last=False)  # least recently seen
        self._clients.move_to_end(subject)
        return state

    def _evidence(self, state: _Client, w: float | None, query_p: float | None,
                  detector: SqueezingDetector) -> dict[str, float]:
        s = self.settings
        w_hi = (1.0 + s.prada_delta) / 2.0
        prada = 0.0 if w is None else min(1.0, max(0.0, (w_hi - w) / (w_hi - s.prada_delta)))
        n, k = len(state.flags), sum(state.flags)
        # Flags of one client share the detector's threshold: Beta-Binomial, not Binomial.
        adv_p = (float(beta_binomial_sf_table(n, detector.a, detector.b)[k])
                 if n >= s.min_queries else None)
        return {
            "prada": prada,
            "query_distribution": _p_evidence(query_p, s.query_alpha),
            "adversarial": _p_evidence(adv_p, s.adversarial_alpha),
            "prada_w": math.nan if w is None else w,
            "query_p": math.nan if query_p is None else query_p,
            "adversarial_p": math.nan if adv_p is None else adv_p,
        }

    def _judge(self, subject: Subject, state: _Client, evidence: dict[str, float],
               now: float) -> list[Alarm]:
        s = self.settings
        scores = {k: evidence[k] for k in ("prada", "query_distribution", "adversarial")}
        detector = max(scores, key=scores.__getitem__)
        state.risk = scores[detector]
        state.evidence = evidence
        if state.risk >= s.block_at:
            level = Level.BLOCK
        elif state.risk >= s.throttle_at:
            level = Level.THROTTLE
        else:
            return []
        if state.level is Level.BLOCK or state.level is level:
            return []  # each level is raised once per client
        state.level = level
        kind = Kind.ADVERSARIAL if detector == "adversarial" else Kind.EXTRACTION
        numbers = {k: round(v, 6) for k, v in evidence.items() if not math.isnan(v)}
        return [Alarm(kind=kind, level=level, subject_kind=subject[0], subject=subject[1],
                      risk=round(state.risk, 4), time=now, evidence=numbers | {
                          "n_queries": float(state.n_queries)},
                      summary=f"{kind} suspected from {subject[0]} {subject[1]} after "
                              f"{state.n_queries} queries (risk {state.risk:.2f}, "
                              f"strongest evidence: {detector})")]

    def _drift_step(self, x: np.ndarray, version: str, now: float) -> list[Alarm]:
        s = self.settings
        self._window.extend(x.reshape(len(x), -1))
        self._since_drift_test += len(x)
        if len(self._window) < s.drift_window or self._since_drift_test < s.drift_every:
            return []
        if time.monotonic() - self._last_drift_test < s.drift_interval_s:
            return []
        self._since_drift_test = 0
        self._last_drift_test = time.monotonic()
        window = np.stack(self._window)
        ks = self._ks(self._reference, window)
        mmd = self._mmd(self._reference, window, generator=self._rng)
        drifting = ks.drift or mmd.drift
        self._drift.append({"time": now, "ks_p": ks.p_value, "mmd_p": mmd.p_value,
                            "drift": float(drifting)})
        self._drifting = self._drifting + 1 if drifting else 0
        if self._drifting != 2:  # alarm once, on the second drifting test in a row
            return []
        moved = ks.drifted_features
        return [Alarm(kind=Kind.DRIFT, level=Level.ALERT, subject_kind="model", subject=version,
                      risk=1.0, time=now,
                      evidence={"ks_p": ks.p_value, "mmd_p": mmd.p_value,
                                "n_features_drifted": float(len(moved))},
                      summary=f"input drift on model {version}: KS p={ks.p_value:.2g} "
                              f"({len(moved)} features), MMD p={mmd.p_value:.2g}")]
