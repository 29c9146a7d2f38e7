"""The runtime monitor on streams with known ground truth: natural digits from benign
clients, Jacobian-augmentation and random-query extraction, PGD examples, drift."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from tests.detection.conftest import Recorder, digits_classifier
from tests.gateway.conftest import wait_until

from bastion.attacks.evasion.pgd import PGD
from bastion.attacks.extraction import JacobianAugmentation, extract_model
from bastion.gateway import monitor as monitor_module
from bastion.gateway.hooks import RequestEvent, Verdict
from bastion.gateway.incidents.alarm import Alarm, Kind, Level
from bastion.gateway.monitor import MonitorSettings, RuntimeMonitor, batch_of
from bastion.gateway.scoring import Scorer, client_runs
from bastion.gateway.scoring_process import _LAG_BATCHES, may_restore_priority
from bastion.gateway.slots import ModelSlot, ModelVersion
from bastion.models.torch import TorchClassifier


class Sink:
    def __init__(self) -> None:
        self.alarms: list[Alarm] = []

    def handle(self, alarm: Alarm) -> None:
        self.alarms.append(alarm)


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    # The model never sees the reference rows: the squeezing threshold is set on them,
    # and a model is steadier on its own training data than on new inputs.
    model, train_x, _, test_x, test_y = digits_classifier(n_train=1000)
    recorder = Recorder(model)
    extract_model(recorder, JacobianAugmentation(seed_x=test_x[:20], step=0.1),
                  budget=640, eval_x=test_x, n_rounds=6, epochs=10, seed=0)
    return {"model": model, "reference": train_x[1000:], "test_x": test_x, "test_y": test_y,
            "jacobian": np.concatenate(recorder.asked[1:])}


_ids = itertools.count()


def _monitor(world: dict[str, Any], **settings: Any) -> tuple[RuntimeMonitor, Sink]:
    sink = Sink()
    slot = ModelSlot(ModelVersion("v1", world["model"]))
    monitor = RuntimeMonitor(models=slot, reference=world["reference"],
                             settings=MonitorSettings(**settings), sink=sink)
    return monitor, sink


def _send(monitor: RuntimeMonitor, model: TorchClassifier, stream: np.ndarray, *,
          token: str | None, client: str = "10.0.0.1", batch: int = 10,
          latency_ms: float = 3.0) -> None:
    for start in range(0, len(stream), batch):
        x = stream[start : start + batch]
        monitor.after(RequestEvent(time=float(start), request_id=str(next(_ids)),
                                   token_id=token, role="client", client=client, x=x,
                                   proba=model.predict_proba(x), latency_ms=latency_ms,
                                   decision="allow"))
    monitor.flush()


@pytest.fixture
def monitored(world: dict[str, Any]) -> Iterator[tuple[RuntimeMonitor, Sink]]:
    monitor, sink = _monitor(world)
    yield monitor, sink
    monitor.close()


def test_benign_clients_on_natural_data_raise_nothing(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, sink = monitored
    test_x = world["test_x"]
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(test_x))
        _send(monitor, world["model"], test_x[order], token=f"benign{seed}")
    assert sink.alarms == []
    clients = monitor.snapshot()["clients"]
    assert len(clients) == 3 and all(c["risk"] < 0.5 and c["level"] == "ok" for c in clients)
    assert monitor.before("10.0.0.1", "benign0") is Verdict.ALLOW


def test_jacobian_extraction_client_is_flagged_and_blocked(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, sink = monitored
    monitor.attach(sink)
    _send(monitor, world["model"], world["test_x"][:300], token="benign")
    _send(monitor, world["model"], world["jacobian"], token="attacker")
    extraction = [a for a in sink.alarms if a.kind is Kind.EXTRACTION]
    assert {a.subject for a in extraction} == {"attacker"}
    assert extraction[-1].level is Level.BLOCK
    assert extraction[-1].evidence["prada_w"] < 0.9
    assert extraction[-1].evidence["n_queries"] <= 250  # found early in a 640-query attack


def test_without_a_responder_a_block_alarm_blocks_the_token(world: dict[str, Any]) -> None:
    monitor, _ = _monitor(world)
    monitor._sink = None  # a bare monitor, no incident responder
    try:
        _send(monitor, world["model"], world["jacobian"], token="attacker")
        assert monitor.before("10.0.0.9", "attacker") is Verdict.BLOCK
        assert monitor.before("10.0.0.9", "someone-else") is Verdict.ALLOW
    finally:
        monitor.close()


def test_random_queries_trip_the_query_distribution_test(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, sink = monitored
    noise = np.random.default_rng(0).uniform(size=(60, 1, 8, 8)).astype(np.float32)
    _send(monitor, world["model"], noise, token=None, client="192.0.2.7")
    assert sink.alarms and sink.alarms[-1].kind is Kind.EXTRACTION
    assert sink.alarms[-1].subject_kind == "client" and sink.alarms[-1].subject == "192.0.2.7"
    assert sink.alarms[-1].evidence["query_distribution"] == 1.0


def test_pgd_examples_raise_an_adversarial_alarm(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, sink = monitored
    model, test_x, test_y = world["model"], world["test_x"], world["test_y"]
    result = PGD(eps=0.1, steps=20)(model, test_x[:100], test_y[:100],
                                    generator=torch.Generator().manual_seed(0))
    adversarial = result.x_adv.numpy()[result.success.numpy()]
    _send(monitor, model, adversarial[:60], token="evader", batch=1)
    kinds = {(a.kind, a.subject) for a in sink.alarms}
    assert (Kind.ADVERSARIAL, "evader") in kinds


def test_drift_alarm_on_shifted_traffic_once_and_never_on_clean(world: dict[str, Any]) -> None:
    monitor, sink = _monitor(world, drift_window=100, drift_every=50, drift_interval_s=0,
                             prada_min_distances=4_000,
                             query_alpha=1e-300, adversarial_alpha=1e-300)
    try:
        test_x = world["test_x"]
        _send(monitor, world["model"], test_x[:400], token="a")
        assert [a for a in sink.alarms if a.kind is Kind.DRIFT] == []
        _send(monitor, world["model"], np.clip(test_x[:400] + 0.2, 0, 1), token="a")
        drift = [a for a in sink.alarms if a.kind is Kind.DRIFT]
        assert len(drift) == 1 and drift[0].subject == "v1"
        assert drift[0].evidence["ks_p"] < 0.01 and drift[0].evidence["mmd_p"] < 0.01
        monitor._clock = lambda: 400.0
        assert monitor.snapshot()["drift"]["tests"][-1]["drift"] == 1.0
    finally:
        monitor.close()


def test_snapshot_counts_requests_and_latency(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, _ = monitored
    monitor._clock = lambda: 100.0
    _send(monitor, world["model"], world["test_x"][:50], token="t", latency_ms=4.0)
    snap = monitor.snapshot(span_s=300.0, bucket_s=5.0)
    assert snap["requests"]["total"] == 5 and snap["requests"]["rows"] == 50
    assert snap["requests"]["p50_ms"] == pytest.approx(4.0)
    assert sum(b["rate_per_s"] * 5.0 for b in snap["requests"]["series"]) == pytest.approx(5)
    assert snap["clients"][0]["n_queries"] == 50
    assert "x" not in str(snap["clients"][0].keys())  # numbers only, never inputs


def test_a_batch_of_waiting_requests_is_split_back_per_client(world: dict[str, Any]) -> None:
    model = world["model"]
    noise = np.random.default_rng(1).uniform(size=(40, 1, 8, 8)).astype(np.float32)
    natural = world["test_x"][:40]
    events = [RequestEvent(time=float(i), request_id=f"b{i}", token_id=token, role="client",
                           client="10.0.0.1", x=x, proba=model.predict_proba(x),
                           latency_ms=1.0, decision="allow")
              for i in range(4)
              for token, x in (("noisy", noise[10 * i : 10 * i + 10]),
                               ("honest", natural[10 * i : 10 * i + 10]))]
    scorer = Scorer(world["reference"], MonitorSettings())
    # what the worker hands the scorer when requests queued up together
    alarms = scorer.observe(batch_of(events, "v1"), ModelVersion("v1", model))
    clients = {c["subject"]: c for c in scorer.view(since=0.0, top=20)["clients"]}
    assert clients["noisy"]["n_queries"] == clients["honest"]["n_queries"] == 40
    assert [a.subject for a in alarms] == ["noisy"]
    assert clients["honest"]["risk"] == 0.0


def _event(token: str | None, n_rows: int, client: str = "10.0.0.1") -> RequestEvent:
    x = np.zeros((n_rows, 1, 8, 8), dtype=np.float32)
    return RequestEvent(time=0.0, request_id=str(next(_ids)), token_id=token, role="client",
                        client=client, x=x, proba=np.full((n_rows, 10), 0.1), latency_ms=1.0,
                        decision="allow")


@pytest.mark.parametrize(("rows", "client_batch", "expected"), [
    # one client, one row per request: a run closes at client_batch rows
    ([("a", 1)] * 5, 2, [("a", [0, 1]), ("a", [2, 3]), ("a", [4])]),
    # a request bigger than client_batch is a run of its own
    ([("a", 5), ("a", 1)], 3, [("a", [0]), ("a", [1])]),
    # interleaved clients keep their own runs, in each client's order
    ([("a", 1), ("b", 1), ("a", 1), ("b", 1), ("a", 1)], 2,
     [("a", [0, 2]), ("b", [1, 3]), ("a", [4])]),
    # client_batch=1: every request is judged alone (the per-request behaviour)
    ([("a", 1), ("b", 2), ("a", 1)], 1, [("a", [0]), ("b", [1]), ("a", [2])]),
])
def test_waiting_requests_are_cut_into_runs_per_client(
        rows: list[tuple[str, int]], client_batch: int,
        expected: list[tuple[str, list[int]]]) -> None:
    runs = client_runs([("token", token) for token, _ in rows], [n for _, n in rows],
                       client_batch)
    assert [(subject[1], indices) for subject, indices in runs] == expected


def test_a_tokenless_client_counts_against_its_address() -> None:
    batch = batch_of([_event(None, 1, client="192.0.2.1"), _event("t", 1)], "v1")
    assert batch.subjects == [("client", "192.0.2.1"), ("token", "t")]


def test_runs_of_waiting_requests_still_stop_extraction_early(world: dict[str, Any]) -> None:
    """The whole 640-query attack waiting at once (a worker far behind): the block comes
    within one run of client_batch rows of where a test per request puts it."""
    model, jacobian = world["model"], world["jacobian"]
    per_request, per_request_sink = _monitor(world, client_batch=1)
    try:
        _send(per_request, model, jacobian, token="attacker", batch=1)
        first = _first_block(per_request_sink)
    finally:
        per_request.close()
    scorer = Scorer(world["reference"], MonitorSettings())
    alarms = scorer.observe(batch_of([
        RequestEvent(time=float(i), request_id=str(next(_ids)), token_id="attacker",
                     role="client", client="10.0.0.1", x=jacobian[i : i + 1],
                     proba=model.predict_proba(jacobian[i : i + 1]), latency_ms=1.0,
                     decision="allow") for i in range(len(jacobian))], "v1"),
        ModelVersion("v1", model))
    blocked = [a.evidence["n_queries"] for a in alarms if a.level is Level.BLOCK]
    assert blocked and first <= blocked[0] < first + scorer.settings.client_batch


def test_the_request_path_never_waits_for_the_worker(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, _ = monitored
    monitor.block("token", "bad")
    answers: list[Verdict] = []
    with monitor._lock:  # as while the worker scores a batch
        asking = threading.Thread(target=lambda: answers.extend(
            [monitor.before("10.0.0.1", "bad"), monitor.before("10.0.0.1", "good")]))
        asking.start()
        asking.join(timeout=5)
    assert answers == [Verdict.BLOCK, Verdict.ALLOW]


def test_a_full_backlog_holds_the_request_path_back_rather_than_drop_events(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``_MAX_QUEUED`` waiting events ``after`` waits for the worker: an event
    dropped under load would be a blind spot an attacker could make."""
    monkeypatch.setattr(monitor_module, "_MAX_QUEUED", 3)
    monitor, _ = _monitor(world, scoring="thread")
    scored: list[int] = []
    release = threading.Event()

    def slow_score(events: list[RequestEvent]) -> None:
        release.wait(30)
        scored.append(len(events))

    monkeypatch.setattr(monitor, "_score", slow_score)
    x = world["test_x"][:1]
    event = RequestEvent(time=0.0, request_id="r", token_id="t", role="client",
                         client="10.0.0.1", x=x, proba=world["model"].predict_proba(x),
                         latency_ms=1.0, decision="allow")
    monitor.after(event)
    wait_until(lambda: not monitor._events, "the worker did not take the first event")
    for _ in range(3):
        monitor.after(event)  # room for these
    waited_with: list[int] = []

    def note_the_wait(seconds: float) -> None:  # the worker is let go once after() waits
        waited_with.append(len(monitor._events))
        release.set()
        time.sleep(seconds)

    monkeypatch.setattr(monitor_module, "time", SimpleNamespace(
        sleep=note_the_wait, monotonic=time.monotonic))
    monitor.after(event)  # the fourth waiting: held back until the worker takes them
    assert waited_with and waited_with[0] == 3
    monkeypatch.setattr(monitor_module, "time", time)
    monitor.flush()
    monitor.close()
    assert sum(scored) == 5


def _first_block(sink: Sink) -> float:
    return min(a.evidence["n_queries"] for a in sink.alarms if a.level is Level.BLOCK)


def test_scoring_runs_in_its_own_process_and_agrees_with_a_thread(
        world: dict[str, Any]) -> None:
    # Each request judged alone and a drift test every 50 rows: which requests happen
    # to wait together (timing) then changes nothing, so the alarms must be equal.
    exact = {"client_batch": 1, "drift_interval_s": 0}
    monitor, sink = _monitor(world, **exact)
    threaded, threaded_sink = _monitor(world, scoring="thread", **exact)
    try:
        process = monitor._process
        assert process is not None and process.alive
        assert process.pid not in (None, os.getpid()) and threaded._process is None
        for m in (monitor, threaded):
            _send(m, world["model"], world["jacobian"], token="attacker", batch=1)
    finally:
        monitor.close()
        threaded.close()
    assert sink.alarms == threaded_sink.alarms  # the same numbers, wherever they ran
    assert monitor.before("10.0.0.1", "attacker") is Verdict.ALLOW  # the sink decides


def test_if_the_scoring_process_dies_the_server_process_takes_over(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, sink = monitored
    process = monitor._process
    assert process is not None and process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not process.alive
    _send(monitor, world["model"], world["jacobian"], token="attacker", batch=1)
    assert monitor._process is None
    assert [a.subject for a in sink.alarms if a.level is Level.BLOCK] == ["attacker"]


@pytest.mark.skipif(not may_restore_priority(), reason="needs CAP_SYS_NICE or RLIMIT_NICE")
def test_the_scoring_process_yields_its_core_but_not_while_it_lags(
        world: dict[str, Any], monitored: tuple[RuntimeMonitor, Sink]) -> None:
    monitor, _ = monitored
    process = monitor._process
    assert process is not None and process.pid is not None
    pid = process.pid
    assert os.sched_getscheduler(pid) == os.SCHED_IDLE and process.idle_priority is True
    model, rows = world["model"], world["test_x"][:1]
    os.kill(pid, signal.SIGSTOP)  # as if other work took every core
    try:
        for i in range(300):  # apart, so that the worker ships them as separate batches
            if os.sched_getscheduler(pid) == os.SCHED_OTHER:
                break
            monitor.after(RequestEvent(time=float(i), request_id=str(next(_ids)),
                                       token_id="t", role="client", client="10.0.0.1",
                                       x=rows, proba=model.predict_proba(rows),
                                       latency_ms=1.0, decision="allow"))
            time.sleep(0.1)
        raised = os.sched_getscheduler(pid) == os.SCHED_OTHER
    finally:
        os.kill(pid, signal.SIGCONT)
    assert raised, "a lagging scoring process was not given normal priority"
    assert i > _LAG_BATCHES  # not before more than _LAG_BATCHES batches waited
    monitor.flush()
    wait_until(lambda: os.sched_getscheduler(pid) == os.SCHED_IDLE,
               "the scoring process did not yield its core again once it caught up")


def test_without_leave_to_restore_it_the_scoring_process_keeps_normal_priority(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from bastion.gateway import scoring_process

    monkeypatch.setattr(scoring_process, "may_restore_priority", lambda: False)
    monitor, _ = _monitor(world)
    try:
        process = monitor._process
        assert process is not None and process.pid is not None
        assert os.sched_getscheduler(process.pid) == os.SCHED_OTHER
        assert process.idle_priority is None
    finally:
        monitor.close()


class _Unpicklable(TorchClassifier):
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this runtime's session")


def test_a_model_that_cannot_be_shipped_is_scored_in_the_server_process(
        world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    model = world["model"]
    unshippable = _Unpicklable(model.module, input_shape=model.input_shape)
    sink = Sink()
    monitor = RuntimeMonitor(models=ModelSlot(ModelVersion("v1", unshippable)),
                             reference=world["reference"], sink=sink)
    try:
        assert monitor._process is None
        assert "cannot be sent to a scoring process" in caplog.text
        _send(monitor, unshippable, world["jacobian"], token="attacker", batch=1)
        assert _first_block(sink) <= 250
    finally:
        monitor.close()
