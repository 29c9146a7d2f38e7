"""The runtime monitor: a gateway :class:`~bastion.gateway.hooks.Guard` that watches
every served prediction for drift, adversarial inputs and model extraction.

``after`` only queues the event; one worker thread does the statistics, so the request
path pays a queue put. The worker wakes at most every 20 ms and scores whatever
requests are waiting in one model call (feature squeezing), then, per client, on each
run of up to ``client_batch`` of its rows that waited together (as if the client had
sent them as one batch: the tests behind the score cost hundreds of µs each, too much
to repeat after every request),

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

A client is its token id, or its address when it has no token. Its **risk score** in
[0, 1] is the largest of three pieces of evidence, each 1 exactly when that detector
alarms at its own documented threshold and 0 well before it:

* PRADA: ``(w_hi - W) / (w_hi - delta)`` clipped, with ``w_hi = (1 + delta) / 2``;
* query distribution and adversarial rate: p-values on a log scale, 0 at ``p >= 0.01``
  and 1 at ``p <= alpha`` (Beta-Binomial tests of the client's outside / flagged
  counts, exact given how the thresholds were calibrated).

``reference`` must be held-out inputs the model was not trained on (see
:mod:`bastion.detection.adversarial_input` for why).

Risk at ``throttle_at`` or above raises a ``throttle`` alarm, at ``block_at`` a ``block``
alarm (each once per client and level); the :class:`~bastion.gateway.incidents.Responder`
runs the playbook. Blocked clients get :attr:`Verdict.BLOCK` from :meth:`before`; with
a responder attached, the blocked set is the database's open blocks (see :meth:`attach`).
A decision applies from the client's next request on; it comes at most ~20 ms (the
worker's wake-up interval) plus ``client_batch`` rows later than a test after every
single request would have made it.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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
from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.gateway.hooks import RequestEvent, Verdict
from bastion.gateway.incidents.alarm import Alarm, AlarmSink, Kind, Level
from bastion.gateway.incidents.notifiers import AlertSettings, Notifier
from bastion.gateway.incidents.playbooks import Playbooks
from bastion.gateway.slots import ModelSlot, ModelVersion
from bastion.typing import Bounds

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic import SecretStr

    from bastion.gateway.db import Database
    from bastion.gateway.settings import GatewaySettings

__all__ = ["MonitorSettings", "RuntimeMonitor", "load_reference", "monitored_app"]

log = logging.getLogger("bastion.gateway.monitor")

_P_CALM = 0.01  # p-values at or above this are no evidence at all
_MAX_BATCH = 256  # requests scored together by the worker
# The worker gathers requests this long before scoring them: one wake-up and one model
# call per interval instead of per request (and the request path keeps the GIL).
_LINGER_S = 0.02


class MonitorSettings(BaseModel):
    """The ``[monitor]`` table of the gateway's TOML file."""

    model_config = ConfigDict(extra="forbid")

    reference: Path | None = None
    drift_window: int = Field(200, ge=10)
    drift_every: int = Field(50, ge=1)
    drift_interval_s: float = Field(5.0, ge=0)
    drift_alpha: float = Field(0.01, gt=0, lt=1)
    mmd_permutations: int = Field(200, ge=10)
    squeeze_bits: int | None = Field(4, ge=1, le=16)
    squeeze_median: int | None = Field(None, ge=2)
    squeeze_fpr: float = Field(0.05, gt=0, lt=1)
    adversarial_window: int = Field(100, ge=10)
    adversarial_alpha: float = Field(1e-3, gt=0, lt=_P_CALM)
    prada_delta: float = Field(0.9, gt=0, lt=1)
    prada_min_distances: int = Field(100, ge=3)
    query_alpha: float = Field(1e-3, gt=0, lt=_P_CALM)
    query_alpha_query: float = Field(0.05, gt=0, lt=1)
    query_window: int = Field(200, ge=10)
    min_queries: int = Field(30, ge=1)
    # a client's requests that waited together are tested together, up to this many rows
    client_batch: int = Field(32, ge=1)
    throttle_at: float = Field(0.5, gt=0, le=1)
    block_at: float = Field(1.0, gt=0, le=1)
    max_clients: int = Field(10_000, ge=1)
    block_sync_s: float = Field(2.0, gt=0)
    history: int = Field(600, ge=10)
    seed: int = 0
    playbooks: Playbooks = Field(default_factory=Playbooks)
    alerts: AlertSettings = Field(default_factory=AlertSettings)


def load_reference(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """Reference inputs (held-out data the model should see) from a data file."""
    from bastion.data import load_dataset

    x = np.asarray(load_dataset(path).x, dtype=np.float32)
    if x.shape[1:] != input_shape:
        if int(np.prod(x.shape[1:])) != int(np.prod(input_shape)):
            raise ShapeMismatchError(f"reference rows in {path} have shape {x.shape[1:]} but "
                                     f"the model takes {input_shape}")
        x = x.reshape(len(x), *input_shape)
    return x


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


def _subject(event: RequestEvent) -> tuple[str, str]:
    """Who a request counts against: its token, or its address when it has none."""
    return ("token", event.token_id) if event.token_id else ("client", event.client)


def _client_runs(events: Sequence[RequestEvent], n_rows: Sequence[int],
                 client_batch: int) -> list[tuple[tuple[str, str], list[int]]]:
    """Each client's events (their indices, in order) cut into runs that close once they
    hold ``client_batch`` rows; what is left of each client closes the list."""
    open_runs: dict[tuple[str, str], tuple[list[int], int]] = {}
    runs: list[tuple[tuple[str, str], list[int]]] = []
    for i, (event, n) in enumerate(zip(events, n_rows, strict=True)):
        subject = _subject(event)
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
    if p is None or p >= _P_CALM:
        return 0.0
    if p <= alpha:
        return 1.0
    return (math.log(_P_CALM) - math.log(p)) / (math.log(_P_CALM) - math.log(alpha))


class RuntimeMonitor:
    """Drift, adversarial-input and extraction detection behind the gateway."""

    def __init__(self, *, models: ModelSlot, reference: np.ndarray,
                 settings: MonitorSettings | None = None, sink: AlarmSink | None = None,
                 clock: Any = time.time) -> None:
        self.settings = s = settings or MonitorSettings()
        model = models.current.model
        reference = np.asarray(reference, dtype=np.float32)
        if reference.shape[1:] != tuple(model.input_shape):
            raise ShapeMismatchError(f"reference rows have shape {reference.shape[1:]} but the "
                                     f"model takes {tuple(model.input_shape)}")
        if len(reference) < 40:
            raise InvalidDataError("the monitor needs at least 40 reference rows (held-out "
                                   "data the model should see)")
        self._models = models
        self._reference = reference.reshape(len(reference), -1)
        rng = np.random.default_rng(s.seed)
        self._rng = rng
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
        self._clients: OrderedDict[tuple[str, str], _Client] = OrderedDict()
        # replaced, never changed in place: the request path reads it without a lock
        self._blocked: frozenset[tuple[str, str]] = frozenset()
        self._own_blocks: set[tuple[str, str]] = set()
        self._blocks_source: Callable[[], dict[tuple[str, str], bool]] | None = None
        self._last_sync = time.monotonic()
        self._window: deque[np.ndarray] = deque(maxlen=s.drift_window)
        self._since_drift_test = 0
        self._last_drift_test = -math.inf
        self._drifting = 0
        self._drift: deque[dict[str, float]] = deque(maxlen=s.history)
        self._requests: deque[tuple[float, int, float, str]] = deque(maxlen=50_000)
        self._sink = sink
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: queue.Queue[RequestEvent | None] = queue.Queue(maxsize=10_000)
        self._worker = threading.Thread(target=self._run, name="bastion-monitor", daemon=True)
        self._worker.start()

    # -- Guard -------------------------------------------------------------------------

    def before(self, client: str, token_id: str | None) -> Verdict:
        # No lock: the worker may hold it for a whole batch, and the request path must
        # not wait for that; the set is swapped whole, so this reads one version of it.
        blocked = self._blocked
        if ("client", client) in blocked or (
                token_id is not None and ("token", token_id) in blocked):
            return Verdict.BLOCK
        return Verdict.ALLOW

    def after(self, event: RequestEvent) -> None:
        # Back-pressure rather than dropping: a dropped event is an attacker's blind spot.
        self._queue.put(event)

    # -- control -----------------------------------------------------------------------

    def attach(self, sink: AlarmSink,
               blocks: Callable[[], dict[tuple[str, str], bool]] | None = None) -> None:
        """Send alarms to ``sink`` (the incident responder) from now on.

        ``blocks`` (the database's blocked subjects, True while an incident about them
        is open) is read at once and then every ``block_sync_s``: a block placed by
        another worker process holds here too, and closing its incident lifts it
        everywhere within seconds. A block this process placed stays until the
        database says its incident is closed (so a failed write does not lift it).
        """
        self._sink = sink
        self._blocks_source = blocks
        self._sync_blocks()

    def _sync_blocks(self) -> None:
        if self._blocks_source is None:
            return
        try:
            known = self._blocks_source()
        except Exception as err:  # keep enforcing what we know while the DB is away
            log.warning("could not refresh blocked clients (%s)", type(err).__name__)
            return
        with self._lock:
            self._own_blocks = {k for k in self._own_blocks if known.get(k, True)}
            self._blocked = frozenset(
                {k for k, open_ in known.items() if open_} | self._own_blocks)
        self._last_sync = time.monotonic()

    def block(self, subject_kind: str, subject: str) -> None:
        """Refuse a ``token`` or ``client`` with 403 from its next request on."""
        with self._lock:
            self._own_blocks.add((subject_kind, subject))
            self._blocked = self._blocked | {(subject_kind, subject)}

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued event has been processed (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=10)

    # -- worker ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            # Take whatever is waiting (up to a bound) and score it in one model call:
            # under load the monitor's cost per request falls instead of piling up.
            if time.monotonic() - self._last_sync >= self.settings.block_sync_s:
                self._sync_blocks()
            try:
                events = [self._queue.get(timeout=self.settings.block_sync_s)]
            except queue.Empty:
                continue
            if self._queue.qsize() < _MAX_BATCH:
                time.sleep(_LINGER_S)  # let the batch gather
            while len(events) < _MAX_BATCH:
                try:
                    events.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            live = [e for e in events if e is not None]
            try:
                if live:
                    self._observe(live)
            except Exception:  # the monitor must outlive one bad batch, loudly
                log.exception("runtime monitor failed on %d requests", len(live))
            finally:
                for _ in events:
                    self._queue.task_done()
            if len(live) < len(events):
                return

    def _observe(self, events: list[RequestEvent]) -> None:
        xs = [np.asarray(e.x, dtype=np.float32) for e in events]
        probas = [np.asarray(e.proba, dtype=np.float64) for e in events]
        version = self._models.current
        detector = self._detector(version)
        _, flagged = detector(_Served(version), np.concatenate(xs), np.concatenate(probas))
        ends = np.cumsum([len(x) for x in xs])[:-1]
        flags = np.split(flagged, ends)
        chunks = _client_runs(events, [len(x) for x in xs], self.settings.client_batch)
        alarms: list[Alarm] = []
        with self._lock:
            for event, x in zip(events, xs, strict=True):
                self._requests.append((event.time, len(x), event.latency_ms, event.decision))
            for subject, run in chunks:
                x = np.concatenate([xs[i] for i in run])
                proba = np.concatenate([probas[i] for i in run])
                now = events[run[-1]].time
                state = self._client(subject)
                state.n_queries += len(x)
                state.last_seen = now
                state.flags.extend(np.concatenate([flags[i] for i in run]).tolist())
                prada = state.prada.update(x, proba.argmax(axis=1))
                dist = state.queries.update(x)
                evidence = self._evidence(state, prada.w, dist.p_value, detector)
                alarms += self._judge(subject, state, evidence, now)
                alarms += self._drift_step(x, version.name, now)
        for alarm in alarms:
            self._raise(alarm)

    def _detector(self, version: ModelVersion) -> SqueezingDetector:
        detector = self._detectors.get(version.name)
        if detector is None:  # fitted per model version: a rollback changes the model
            detector = self._squeezing.fit(_Served(version), self._squeeze_reference)
            self._detectors[version.name] = detector
        return detector

    def _client(self, subject: tuple[str, str]) -> _Client:
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

    def _judge(self, subject: tuple[str, str], state: _Client, evidence: dict[str, float],
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

    def _raise(self, alarm: Alarm) -> None:
        if self._sink is not None:
            self._sink.handle(alarm)
        elif alarm.level is Level.BLOCK:  # no responder: the minimal safe response
            self.block(alarm.subject_kind, alarm.subject)

    # -- dashboard ---------------------------------------------------------------------

    def snapshot(self, *, span_s: float = 300.0, bucket_s: float = 5.0,
                 top: int = 20) -> dict[str, Any]:
        """Request rate, latency, drift and client risk for the dashboard (numbers only)."""
        now = float(self._clock())
        with self._lock:
            requests = [r for r in self._requests if r[0] >= now - span_s]
            drift = [d for d in self._drift if d["time"] >= now - span_s]
            clients = sorted(self._clients.items(), key=lambda kv: -kv[1].risk)[:top]
            rows = [{
                "subject_kind": key[0], "subject": key[1], "risk": round(c.risk, 4),
                "level": c.level.value if c.level else "ok", "n_queries": c.n_queries,
                "blocked": key in self._blocked, "last_seen": c.last_seen,
                **{k: (None if math.isnan(v) else round(v, 6))
                   for k, v in (c.evidence or {}).items()},
            } for key, c in clients]
            backlog = self._queue.qsize()
        n_buckets = int(span_s // bucket_s)
        counts = np.zeros(n_buckets)
        lat: list[list[float]] = [[] for _ in range(n_buckets)]
        for t, _rows, latency, _ in requests:
            b = min(n_buckets - 1, int((t - (now - span_s)) // bucket_s))
            counts[b] += 1
            lat[b].append(latency)
        series = [{
            "time": now - span_s + (i + 1) * bucket_s, "rate_per_s": counts[i] / bucket_s,
            "p50_ms": float(np.percentile(v, 50)) if v else None,
            "p99_ms": float(np.percentile(v, 99)) if v else None,
        } for i, v in enumerate(lat)]
        latencies = [r[2] for r in requests]
        return {
            "time": now, "span_s": span_s, "bucket_s": bucket_s, "backlog": backlog,
            "model_version": self._models.current.name,
            "requests": {
                "total": len(requests), "rows": int(sum(r[1] for r in requests)),
                "rate_per_s": len(requests) / span_s,
                "p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
                "p99_ms": float(np.percentile(latencies, 99)) if latencies else None,
                "series": series,
            },
            "drift": {"alpha": self.settings.drift_alpha, "tests": drift},
            "clients": rows,
            "thresholds": {"throttle": self.settings.throttle_at,
                           "block": self.settings.block_at},
        }


def monitored_app(settings: GatewaySettings, *, models: ModelSlot, monitor: MonitorSettings,
                  reference: np.ndarray | None = None, db: Database | None = None,
                  pepper: SecretStr | None = None,
                  notifiers: Sequence[Notifier] | None = None) -> FastAPI:
    """The gateway with the runtime monitor, incident response and the admin dashboard.

    ``reference`` defaults to the data file ``monitor.reference`` names; ``notifiers`` to
    those ``monitor.alerts`` turns on. Blocks are those of open incidents in the
    database, re-read every ``block_sync_s``: they hold across restarts and across
    worker processes, and closing the incident lifts them.
    """
    from bastion.errors import ConfigError
    from bastion.gateway.app import create_app
    from bastion.gateway.dashboard import dashboard_router
    from bastion.gateway.incidents import (
        Dispatcher,
        IncidentStore,
        Levers,
        Responder,
        notifiers_from,
    )

    if reference is None:
        if monitor.reference is None:
            raise ConfigError("the monitor needs reference data: set reference in [monitor] "
                              "to a data file of held-out inputs")
        reference = load_reference(monitor.reference, tuple(models.current.model.input_shape))
    guard = RuntimeMonitor(models=models, reference=reference, settings=monitor)
    app = create_app(settings, models=models, db=db, pepper=pepper, guards=[guard],
                     routers=[dashboard_router()])
    store = IncidentStore(app.state.db.engine)
    dispatcher = Dispatcher(notifiers_from(monitor.alerts) if notifiers is None else notifiers)
    levers = Levers(controls=app.state.controls, blocker=guard,
                    tight_limit=monitor.playbooks.tight_limit)
    guard.attach(Responder(store=store, levers=levers, playbooks=monitor.playbooks,
                           dispatcher=dispatcher), blocks=store.blocks)
    app.state.monitor = guard
    app.state.incidents = store
    app.state.alerts = dispatcher
    return app
