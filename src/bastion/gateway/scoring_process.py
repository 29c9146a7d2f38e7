"""The runtime monitor's :class:`~bastion.gateway.scoring.Scorer` in a process of its own.

In the server process the scorer's batches (a few ms of numpy and scipy every 50 ms
under load) hold the GIL in turns with the event loop, and a request that arrives
meanwhile waits: that was most of the gateway's p99 overhead. Here the scorer runs in
a child process and the server process only ships each batch down a pipe (one pickle
of a few arrays) and reads the alarms back on a thread that is idle between batches.

The child is forked from multiprocessing's fork server, a clean single-threaded
process started once per server process (forking the server itself, with its event
loop, database pools and model runtimes' thread pools, is not safe). It receives the
fitted scorer and each served model version over the pipe, as pickles made by this
process of objects it loaded itself through the scanner-checked loaders; no file is
unpickled. A model that cannot be pickled (an ONNX Runtime session) cannot be shipped:
:meth:`ScoringProcess.ship` raises, and the monitor then scores in a thread.

Even in a process of its own, the scorer's few milliseconds per batch take a core that
the event loop or a client may be woken onto, and such a request then waits for the
kernel's next preemption: at one request at a time this was the gateway's p99 overhead.
So where the server may give the priority back afterwards (``CAP_SYS_NICE``, which root
has on a host but not in a default Docker container, or ``RLIMIT_NICE`` of 20 or more),
the child runs as ``SCHED_IDLE``: any other work preempts it at once and the kernel
places woken tasks on its core as on an idle one. It then only uses time nothing else
wants, so while more than ``_LAG_BATCHES`` batches wait (the machine is saturated) it is
raised back to normal scheduling, until it has caught up: detection never waits long
behind other work. Without that permission the child
stays at normal priority (an unprivileged process cannot leave ``SCHED_IDLE``, and a
child starved by other work would stall the monitor).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import multiprocessing.util  # noqa: F401  (before our atexit hook: see _close_all)
import os
import resource
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bastion.gateway.forkserver import forkserver
from bastion.gateway.incidents.alarm import Alarm
from bastion.gateway.scoring import Batch, Scorer
from bastion.gateway.slots import ModelVersion

__all__ = ["ScoringProcess"]

log = logging.getLogger("bastion.gateway.monitor")

_READY_S = 60.0  # the child's start: a fork, then unpickling the scorer
# submitted batches not yet scored (one per ~50 ms under load) beyond which a child in
# SCHED_IDLE is given normal priority until it has caught up
_LAG_BATCHES = 3
_CAP_SYS_NICE = 23
_open: weakref.WeakSet[ScoringProcess] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Close scoring processes cleanly at exit. atexit runs hooks last-in first-out and
    multiprocessing.util, imported above, registered its own (which terminates child
    processes) first: this one runs before it."""
    for process in list(_open):
        process.close()


class ScoringProcess:
    """A child process scoring batches; alarms come back to ``on_alarms`` on a thread.

    :meth:`submit` returns once the batch is in the pipe; :meth:`settle` waits until
    every submitted batch has been scored and its alarms handled. If the child dies,
    :attr:`alive` turns false and the monitor takes over in its own process.
    """

    def __init__(self, scorer: Scorer, on_alarms: Callable[[list[Alarm]], None]) -> None:
        ctx = forkserver()
        ours, theirs = ctx.Pipe()
        self._process = ctx.Process(target=_child, args=(theirs, scorer), daemon=True,
                                    name="bastion-monitor-scoring")
        self._process.start()
        theirs.close()
        self._conn = ours
        self._on_alarms = on_alarms
        self._send_lock = threading.Lock()
        self._settled = threading.Condition()
        self._submitted = self._scored = 0
        self._shipped: set[str] = set()
        self._views: dict[int, dict[str, Any]] = {}
        self._view_ids = itertools.count()
        self.alive = True
        if not ours.poll(_READY_S):
            self._process.kill()
            raise RuntimeError("the monitor's scoring process did not start")
        ours.recv()  # "ready"
        # whether the child runs as SCHED_IDLE now; None: left as it is, at normal priority
        self._idle: bool | None = False if may_restore_priority() else None
        self._set_idle(True)
        self._receiver = threading.Thread(target=self._receive, daemon=True,
                                          name="bastion-monitor-results")
        self._receiver.start()
        _open.add(self)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def ship(self, version: ModelVersion) -> None:
        """Send a model version to the scoring process (once per version). A model that
        does not pickle raises here, before anything reaches the pipe."""
        with self._send_lock:
            if version.name not in self._shipped:
                self._conn.send(("model", version.name, version.model))
                self._shipped.add(version.name)

    def submit(self, batch: Batch, version: ModelVersion) -> None:
        self.ship(version)
        with self._send_lock:
            with self._settled:
                self._submitted += 1
                if self._submitted - self._scored > _LAG_BATCHES:
                    self._set_idle(False)
            self._conn.send(("batch", batch))

    @property
    def idle_priority(self) -> bool | None:
        """Whether the child runs as ``SCHED_IDLE`` now (``None``: never, not permitted)."""
        return self._idle

    def _set_idle(self, idle: bool) -> None:
        # called with self._settled held, except at start
        pid = self._process.pid
        if self._idle is None or self._idle is idle or pid is None:
            return
        policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
        try:
            os.sched_setscheduler(pid, policy, os.sched_param(0))
        except OSError as err:  # gone, or not permitted after all: leave it from now on
            log.warning("could not change the scoring process's priority (%s)", err)
            self._idle = None
            return
        self._idle = idle

    def settle(self, timeout_s: float) -> bool:
        """Wait until every submitted batch is scored; False on timeout or death."""
        with self._settled:
            return self._settled.wait_for(
                lambda: self._scored >= self._submitted or not self.alive, timeout_s
            ) and self.alive

    def view(self, *, since: float, top: int, timeout_s: float = 5.0) -> dict[str, Any]:
        """The scorer's :meth:`~bastion.gateway.scoring.Scorer.view`, asked over the pipe."""
        ask = next(self._view_ids)
        with self._send_lock:
            self._conn.send(("view", ask, since, top))
        with self._settled:
            if not self._settled.wait_for(lambda: ask in self._views or not self.alive,
                                          timeout_s) or not self.alive:
                raise RuntimeError("the monitor's scoring process did not answer")
            return self._views.pop(ask)

    def close(self) -> None:
        """Ask the scoring process to finish (it answers "closed"), then make sure it did."""
        _open.discard(self)
        try:
            with self._send_lock:
                self._conn.send(None)
        except OSError:
            pass  # already gone
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
        self._receiver.join(timeout=10)
        self._conn.close()

    def _receive(self) -> None:
        closed = False
        while not closed:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "scored":
                try:
                    self._on_alarms(message[1])
                finally:
                    with self._settled:
                        self._scored += 1
                        if self._scored == self._submitted and self._idle is False:
                            self._set_idle(True)  # caught up
                        self._settled.notify_all()
            elif message[0] == "view":
                with self._settled:
                    self._views[message[1]] = message[2]
                    self._settled.notify_all()
            closed = message[0] == "closed"
        if not closed:
            self._process.join(timeout=1)
            log.error("the monitor's scoring process ended (exit code %s)",
                      self._process.exitcode)
        with self._settled:
            self.alive = False
            self._settled.notify_all()

    def __repr__(self) -> str:
        return f"ScoringProcess(pid={self.pid}, alive={self.alive})"


def may_restore_priority() -> bool:
    """Whether this process may move a child of its own from ``SCHED_IDLE`` back to
    normal scheduling: with ``CAP_SYS_NICE`` or an ``RLIMIT_NICE`` of 20 or more."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    if soft == resource.RLIM_INFINITY or soft >= 20:
        return True
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_SYS_NICE & 1)
    return False


def _child(conn: Connection, scorer: Scorer) -> None:
    """The scoring process: one message at a time until the server says stop or goes."""
    models: dict[str, ModelVersion] = {}
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return  # the server process is gone
        if message is None:
            conn.send(("closed",))
            return
        kind = message[0]
        if kind == "model":
            models[message[1]] = ModelVersion(message[1], message[2])
        elif kind == "batch":
            batch: Batch = message[1]
            started = time.monotonic()
            try:
                alarms = scorer.observe(batch, models[batch.version])
            except Exception:  # the monitor must outlive one bad batch, loudly
                log.exception("runtime monitor failed on %d requests after %.0f ms",
                              len(batch.subjects), 1e3 * (time.monotonic() - started))
                alarms = []
            conn.send(("scored", alarms))
        elif kind == "view":
            conn.send(("view", message[1], scorer.view(since=message[2], top=message[3])))
