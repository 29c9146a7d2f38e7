"""The runtime monitor: a gateway :class:`~bastion.gateway.hooks.Guard` that watches
every served prediction for drift, adversarial inputs and model extraction.

``after`` only appends the event. A worker thread wakes every 50 ms, packs
whatever requests are waiting into one :class:`~bastion.gateway.scoring.Batch` and has
the :class:`~bastion.gateway.scoring.Scorer` (what is computed, and the risk score, are
described there) turn it into alarms. With ``scoring = "process"`` (the default) the
scorer runs in a process of its own (:mod:`bastion.gateway.scoring_process`) and the
server process only ships batches down a pipe: the statistics then never hold the
GIL the event loop needs. With ``"thread"``, or for a model that cannot be sent to
another process, the worker scores in the server process as well.

A client is its token id, or its address when it has no token. ``reference`` must be
held-out inputs the model was not trained on (see
:mod:`bastion.detection.adversarial_input` for why).

The :class:`~bastion.gateway.incidents.Responder` runs the playbook for each alarm.
Blocked clients get :attr:`Verdict.BLOCK` from :meth:`before`; with a responder
attached, the blocked set is the database's open blocks (see :meth:`attach`). A
decision applies from the client's next request on; it comes at most ~50 ms (the
worker's wake-up interval) plus ``client_batch`` rows later than a test after every
single request would have made it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.gateway.hooks import RequestEvent, Verdict
from bastion.gateway.incidents.alarm import Alarm, AlarmSink, Level
from bastion.gateway.incidents.notifiers import AlertSettings, Notifier
from bastion.gateway.incidents.playbooks import Playbooks
from bastion.gateway.scoring import P_CALM, Batch, Scorer, Subject
from bastion.gateway.scoring_process import ScoringProcess
from bastion.gateway.slots import ModelSlot

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic import SecretStr

    from bastion.gateway.db import Database
    from bastion.gateway.settings import GatewaySettings

__all__ = ["MonitorSettings", "RuntimeMonitor", "batch_of", "load_reference", "monitored_app"]

log = logging.getLogger("bastion.gateway.monitor")

_MAX_BATCH = 256  # requests scored together
_MAX_QUEUED = 10_000  # requests waiting beyond which the request path waits too
# The worker gathers requests this long before scoring them: one wake-up and one model
# call per interval instead of per request (and the request path keeps the GIL). Much of
# the scoring costs per client and predicted class in a batch rather than per row: at
# 2,000 requests a second, 50 ms instead of 20 cut the gateway's CPU by 50-90 µs a
# request, for decisions at most 30 ms later.
_LINGER_S = 0.05


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
    adversarial_alpha: float = Field(1e-3, gt=0, lt=P_CALM)
    prada_delta: float = Field(0.9, gt=0, lt=1)
    prada_min_distances: int = Field(100, ge=3)
    query_alpha: float = Field(1e-3, gt=0, lt=P_CALM)
    query_alpha_query: float = Field(0.05, gt=0, lt=1)
    query_window: int = Field(200, ge=10)
    min_queries: int = Field(30, ge=1)
    # a client's requests that waited together are tested together, up to this many rows
    client_batch: int = Field(32, ge=1)
    # where the statistics run: a process of their own, or a thread of the server's
    scoring: Literal["process", "thread"] = "process"
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


def _subject(event: RequestEvent) -> Subject:
    """Who a request counts against: its token, or its address when it has none."""
    return ("token", event.token_id) if event.token_id else ("client", event.client)


def batch_of(events: Sequence[RequestEvent], version: str) -> Batch:
    """Requests that waited together, packed as arrays for the scorer."""
    xs = [np.asarray(e.x, dtype=np.float32) for e in events]
    return Batch(version=version, subjects=[_subject(e) for e in events],
                 times=[e.time for e in events],
                 offsets=np.cumsum([0, *(len(x) for x in xs)]), x=np.concatenate(xs),
                 proba=np.concatenate([np.asarray(e.proba, dtype=np.float64)
                                       for e in events]))


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
        # fitted here, so bad settings or data fail at start-up, in this process
        self._scorer = Scorer(reference, s)
        # replaced, never changed in place: the request path reads it without a lock
        self._blocked: frozenset[Subject] = frozenset()
        self._own_blocks: set[Subject] = set()
        self._blocks_source: Callable[[], dict[Subject, bool]] | None = None
        self._last_sync = time.monotonic()
        self._requests: deque[tuple[float, int, float, str]] = deque(maxlen=50_000)
        self._sink = sink
        self._clock = clock
        self._lock = threading.Lock()
        self._process: ScoringProcess | None = None
        if s.scoring == "process":
            self._process = ScoringProcess(self._scorer, self._raise_all)
            try:
                self._process.ship(models.current)
            except Exception as err:  # pickling fails in as many ways as objects do
                log.warning("the served model cannot be sent to a scoring process (%s): the "
                            "monitor scores in the server process", type(err).__name__)
                self._process.close()
                self._process = None
        # Appended by the request path and taken by the worker without a lock: a queue's
        # lock, contended by the worker draining it, cost the event loop GIL hand-overs
        # (6 points of throughput at 8 connections).
        self._events: deque[RequestEvent] = deque()
        self._in_hand = False  # the worker has taken events it has not finished with
        self._stop = threading.Event()
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
        while len(self._events) >= _MAX_QUEUED and self._worker.is_alive():
            time.sleep(0.001)
        self._events.append(event)

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
        """Wait until every queued event has been scored and its alarms handled (tests,
        shutdown)."""
        deadline = time.monotonic() + timeout_s
        while (self._events or self._in_hand) and time.monotonic() < deadline:
            time.sleep(0.005)
        process = self._process
        if process is not None:
            process.settle(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._worker.join(timeout=10)
        if self._process is not None:
            self._process.close()

    # -- worker ------------------------------------------------------------------------

    def _run(self) -> None:
        events = self._events
        while True:
            if time.monotonic() - self._last_sync >= self.settings.block_sync_s:
                self._sync_blocks()
            # Take whatever gathered meanwhile (up to a bound) and score it as one batch:
            # under load the monitor's cost per request falls instead of piling up.
            stopping = self._stop.wait(_LINGER_S)
            while events:
                self._in_hand = True  # before taking any: flush() must see them
                taken = [events.popleft() for _ in range(min(len(events), _MAX_BATCH))]
                try:
                    self._score(taken)
                except Exception:  # the monitor must outlive one bad batch, loudly
                    log.exception("runtime monitor failed on %d requests", len(taken))
            self._in_hand = False
            if stopping:
                return

    def _score(self, events: list[RequestEvent]) -> None:
        with self._lock:
            for event in events:
                self._requests.append((event.time, len(event.x), event.latency_ms,
                                       event.decision))
        version = self._models.current
        batch = batch_of(events, version.name)
        process = self._process
        if process is not None:
            try:
                if process.alive:
                    process.submit(batch, version)
                    return
            except Exception:  # e.g. a newly deployed version that does not pickle
                log.exception("could not hand requests to the scoring process")
            log.error("the monitor scores in the server process from now on; clients' "
                      "risk history starts over")
            self._process = None
            process.close()
        self._raise_all(self._scorer.observe(batch, version))

    def _raise_all(self, alarms: list[Alarm]) -> None:
        for alarm in alarms:
            if self._sink is not None:
                self._sink.handle(alarm)
            elif alarm.level is Level.BLOCK:  # no responder: the minimal safe response
                self.block(alarm.subject_kind, alarm.subject)

    # -- dashboard ---------------------------------------------------------------------

    def snapshot(self, *, span_s: float = 300.0, bucket_s: float = 5.0,
                 top: int = 20) -> dict[str, Any]:
        """Request rate, latency, drift and client risk for the dashboard (numbers only)."""
        now = float(self._clock())
        process = self._process
        scorer = process if process is not None and process.alive else self._scorer
        view = scorer.view(since=now - span_s, top=top)
        blocked = self._blocked
        for row in view["clients"]:
            row["blocked"] = (row["subject_kind"], row["subject"]) in blocked
        with self._lock:
            requests = [r for r in self._requests if r[0] >= now - span_s]
        backlog = len(self._events)
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
            "drift": {"alpha": self.settings.drift_alpha, "tests": view["drift"]},
            "clients": view["clients"],
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
