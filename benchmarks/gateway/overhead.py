"""Gateway overhead: the same model behind a bare FastAPI endpoint and behind
``bastion serve`` with every feature on (token auth, per-token and per-client rate
limits, validation, output hardening, Prometheus metrics, security headers, body limit,
the hash-chained audit log on SQLite in WAL mode, and the runtime monitor with drift,
feature-squeezing and PRADA extraction detection against held-out reference data).

Gateways measured (``--servers`` picks some):

* ``gateway``: every feature on, as configured by default (``audit_ack=journal``: each
  answer waits for one append of its record to the local journal, committed in batches
  moments later; survives kill -9, not a power cut) and a ``[monitor]`` table;
* ``gateway-commit``: the same with ``audit_ack=commit`` (each answer waits for its
  record's commit and an fsync, ``synchronous=FULL``: survives power loss);
* ``gateway-no-monitor``: ``gateway`` without the ``[monitor]`` table;
* ``gateway-thread-scoring`` (only when asked for): ``gateway`` with the monitor's
  statistics in a thread of the server process (``scoring = "thread"``) instead of a
  scoring process of their own.

Server CPU time per request is read from /proc around each run (all threads and child
processes: the audit committer, the monitor's worker and its scoring process included).
Load comes from ``wrk`` in its own process, over loopback; each request is one held-out
digit, cycling through 297 of them, the same sequence for every server (a single
repeated input would look like an attack to the monitor and is not what a served model
sees).

Two loads per server, interleaved over several rounds (order alternating)
so that noise from other work on the machine hits both alike:

* latency: one connection, one request at a time (no queueing: p50/p99 are the cost of
  a request);
* throughput: ``--connections`` concurrent connections.

Run: benchmarks/gateway/overhead.py [--rounds 5 --seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
PY = sys.executable
# name -> (audit_ack, the [monitor] table's settings beyond its reference, None: no monitor)
GATEWAYS: dict[str, tuple[str, str | None]] = {
    "gateway": ("journal", ""), "gateway-commit": ("commit", ""),
    "gateway-no-monitor": ("journal", None),
    "gateway-thread-scoring": ("journal", 'scoring = "thread"'),
}
DEFAULT_SERVERS = ["gateway", "gateway-commit", "gateway-no-monitor"]
N_TRAIN, N_REFERENCE = 1200, 300  # digits rows: training, monitor reference, the rest
TOKENS_PER_THREAD = 20  # fresh tokens per wrk thread and run, each for 1497 requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_model(root: Path) -> tuple[Path, Path, list[str]]:
    """The served model (trained on the first digits), the monitor's reference file
    (held-out digits) and the request bodies (the digits neither saw)."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    # shuffled: in the dataset's order the later rows are other writers' (a drift)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 16).astype(np.float32), y[order]
    path = root / "digits.skops"
    sio.dump(LogisticRegression(max_iter=300).fit(x[:N_TRAIN], y[:N_TRAIN]), path)
    reference = root / "reference.npz"
    np.savez(reference, x=x[N_TRAIN:N_TRAIN + N_REFERENCE])
    traffic = np.concatenate([x[:N_TRAIN], x[N_TRAIN + N_REFERENCE:]])
    bodies = [json.dumps({"inputs": [[float(v) for v in row]]}) for row in traffic]
    return path, reference, bodies


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code in (200, 404):
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of a process and of every process below it (all
    threads; the monitor's scoring process, a child of multiprocessing's fork server,
    included)."""
    stats: dict[int, list[str]] = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stats[int(path.parent.name)] = path.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue  # ended meanwhile
    tree, todo = set(), [pid]
    while todo:
        tree.add(parent := todo.pop())
        todo += [p for p, fields in stats.items() if int(fields[1]) == parent]
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


class Clients:
    """Honest clients for ``wrk``: each run gets fresh API tokens, and each token sends
    every traffic digit once, in order, before the next token takes over (PRADA rightly
    finds thousands of repeats of a few hundred inputs from one client suspicious)."""

    def __init__(self, db_url: str, pepper: str) -> None:
        from pydantic import SecretStr

        from bastion.gateway.db import open_database
        from bastion.gateway.settings import GatewaySettings
        from bastion.gateway.tokens import TokenStore

        self._store = TokenStore(open_database(db_url), SecretStr(pepper),
                                 GatewaySettings().roles)
        self._n = 0

    def fresh(self, n: int) -> list[str]:
        self._n += n
        return [str(self._store.create(name=f"bench{self._n - i}", role="admin")[0])
                for i in range(n)]


def wrk(url: str, bodies: list[str], tokens: list[str], *, connections: int,
        seconds: int) -> dict[str, float]:
    """One ``wrk`` run; each thread draws its tokens from its own share of ``tokens``."""
    threads = min(2, connections)
    host = url.removeprefix("http://")
    heads = [json.dumps(f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                        f"application/json\r\nAuthorization: Bearer {t}\r\n") for t in tokens]
    shares = ",\n".join("{" + ", ".join(heads[n::threads]) + "}" for n in range(threads))
    tails = ",\n".join(json.dumps(f"Content-Length: {len(b)}\r\n\r\n{b}") for b in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        # wrk's Lua 5.1: one concatenation per request, a new head with each new token
        script.write(
            f"local tails = {{\n{tails}\n}}\n"
            f"local shares = {{\n{shares}\n}}\n"
            "local n_threads = 0\n"
            "function setup(thread)\n"
            "  n_threads = n_threads + 1\n"
            "  thread:set('share', n_threads)\n"
            "end\n"
            "local heads, i\n"
            "function init(args)\n"
            "  heads, i = shares[share], -1\n"
            "end\n"
            "function request()\n"
            "  i = i + 1\n"
            "  local head = heads[math.floor(i / #tails) % #heads + 1]\n"
            "  return head .. tails[i % #tails + 1]\n"
            "end\n")
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections),
                          "-d", f"{seconds}s", "--latency", "-s", script.name,
                          url + "/v1/predict"], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    if "Non-2xx" in out or "Socket errors" in out or "Latency Distribution" not in out:
        raise RuntimeError(f"bad responses during the run:\n{out}")
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
            "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))}  # type: ignore[union-attr]


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise RuntimeError(f"unexpected wrk latency {text!r}")
    value, unit = found.groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--servers", nargs="+", choices=list(GATEWAYS),
                        default=DEFAULT_SERVERS, help="gateways to compare with the bare one")
    parser.add_argument("--out", type=Path, default=HERE / "overhead.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="bastion-bench-gw-"))
    model, reference, bodies = make_model(root)
    env = {**os.environ, "BASTION_GATEWAY_PEPPER": "bench-pepper", "OMP_NUM_THREADS": "1",
           "BASTION_GATEWAY_RATE_LIMIT_TOKEN": "10000000/minute",
           "BASTION_GATEWAY_RATE_LIMIT_CLIENT": "10000000/minute"}
    db_url = f"sqlite:///{root}/audit.db"
    clients = Clients(db_url, env["BASTION_GATEWAY_PEPPER"])
    names = ["bare", *args.servers]
    ports = {name: free_port() for name in names}
    procs = {"bare": subprocess.Popen([PY, str(HERE / "bare_server.py"), "--model", str(model),
                                       "--port", str(ports["bare"])], env=env)}
    for name in args.servers:
        ack, monitor = GATEWAYS[name]
        config = root / f"{name}.toml"
        config.write_text(f"[monitor]\nreference = {json.dumps(str(reference))}\n{monitor}\n")
        # the gateways share one database, as several workers would
        procs[name] = subprocess.Popen(
            [PY, "-m", "bastion.cli.main", "serve", "--model", str(model),
             "--port", str(ports[name]), "--database-url", db_url,
             *(["--config", str(config)] if monitor is not None else [])],
            env={**env, "BASTION_GATEWAY_AUDIT_ACK": ack})
    try:
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}", proc)
        runs: dict[str, dict[str, list[dict[str, float]]]] = {
            n: {"latency": [], "throughput": []} for n in names}
        load_start = os.getloadavg()
        for name in names:  # warm-up
            wrk(f"http://127.0.0.1:{ports[name]}", bodies, clients.fresh(TOKENS_PER_THREAD),
                connections=1, seconds=2)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for load, conns in (("latency", 1), ("throughput", args.connections)):
                for name in order:
                    tokens = clients.fresh(TOKENS_PER_THREAD * min(2, conns))
                    before = cpu_s(procs[name].pid)
                    result = wrk(f"http://127.0.0.1:{ports[name]}", bodies, tokens,
                                 connections=conns, seconds=args.seconds)
                    result["cpu_us_per_request"] = ((cpu_s(procs[name].pid) - before) * 1e6
                                                    / (result["rps"] * args.seconds))
                    runs[name][load].append(result)
                    print(f"round {r} {load:<10} {name:<18} {result}", flush=True)
        report(runs, args, load_start)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def report(runs: dict[str, dict[str, list[dict[str, float]]]], args: argparse.Namespace,
           load_start: tuple[float, float, float]) -> None:
    def med(name: str, load: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name][load])

    summary: dict[str, object] = {
        "rounds": args.rounds, "seconds": args.seconds, "connections": args.connections,
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_average_start": load_start, "load_average_end": os.getloadavg(), "runs": runs,
        "median": {name: {f"{load}_{key}": med(name, load, key)
                          for load in ("latency", "throughput")
                          for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")}
                   for name in runs},
    }
    for name in list(runs)[1:]:
        summary[name] = {
            "latency_p50_overhead_ms": med(name, "latency", "p50_ms")
            - med("bare", "latency", "p50_ms"),
            "latency_p99_overhead_ms": med(name, "latency", "p99_ms")
            - med("bare", "latency", "p99_ms"),
            "throughput_ratio": med(name, "throughput", "rps") / med("bare", "throughput", "rps"),
        }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
