"""Gateway overhead: the same model behind a bare FastAPI endpoint and behind
``bastion serve`` with every feature on (token auth, per-token and per-client rate
limits, validation, output hardening, Prometheus metrics, security headers, body limit,
and the hash-chained audit log on SQLite in WAL mode), once as configured by default
(``audit_ack=commit``, ``synchronous=FULL``: each answer waits for its record's commit and
an fsync, so it survives power loss) and once with ``audit_ack=journal`` (each answer
waits for one append of its record to the local journal, committed in batches moments
later: survives kill -9, not a power cut; everything else default). Server CPU time per
request is read from /proc around each run. Load comes from ``wrk`` in its own process,
over loopback.

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
NAMES = ("bare", "gateway-commit", "gateway-journal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_model(root: Path) -> Path:
    import skops.io as sio
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    path = root / "digits.skops"
    sio.dump(LogisticRegression(max_iter=300).fit(x / 16, y), path)
    return path


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
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: str, headers: dict[str, str], *, connections: int,
        seconds: int) -> dict[str, float]:
    lua_headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n{lua_headers}')
    out = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections),
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
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="bastion-bench-gw-"))
    model = make_model(root)
    env = {**os.environ, "BASTION_GATEWAY_PEPPER": "bench-pepper", "OMP_NUM_THREADS": "1",
           "BASTION_GATEWAY_RATE_LIMIT_TOKEN": "10000000/minute",
           "BASTION_GATEWAY_RATE_LIMIT_CLIENT": "10000000/minute"}
    db_url = f"sqlite:///{root}/audit.db"
    token = subprocess.run([PY, "-m", "bastion.cli.main", "gateway", "token", "create",
                            "--name", "bench", "--role", "admin", "--database-url", db_url],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    ports = {name: free_port() for name in NAMES}
    procs = {"bare": subprocess.Popen([PY, str(HERE / "bare_server.py"), "--model", str(model),
                                       "--port", str(ports["bare"])], env=env)}
    for name, ack in (("gateway-commit", "commit"), ("gateway-journal", "journal")):
        # two gateways, one per audit_ack, on one database (as two workers would)
        procs[name] = subprocess.Popen(
            [PY, "-m", "bastion.cli.main", "serve", "--model", str(model),
             "--port", str(ports[name]), "--database-url", db_url],
            env={**env, "BASTION_GATEWAY_AUDIT_ACK": ack})
    try:
        for name, proc in procs.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}", proc)
        body = json.dumps({"inputs": [[0.25] * 64]})
        plain = {"Content-Type": "application/json"}
        headers = {name: plain if name == "bare" else {**plain, "Authorization": f"Bearer {token}"}
                   for name in NAMES}
        runs: dict[str, dict[str, list[dict[str, float]]]] = {
            n: {"latency": [], "throughput": []} for n in procs}
        load_start = os.getloadavg()
        for name in procs:  # warm-up
            wrk(f"http://127.0.0.1:{ports[name]}", body, headers[name], connections=1, seconds=2)
        for r in range(args.rounds):
            order = list(NAMES) if r % 2 == 0 else list(reversed(NAMES))
            for load, conns in (("latency", 1), ("throughput", args.connections)):
                for name in order:
                    before = cpu_s(procs[name].pid)
                    result = wrk(f"http://127.0.0.1:{ports[name]}", body, headers[name],
                                 connections=conns, seconds=args.seconds)
                    result["cpu_us_per_request"] = ((cpu_s(procs[name].pid) - before) * 1e6
                                                    / (result["rps"] * args.seconds))
                    runs[name][load].append(result)
                    print(f"round {r} {load:<10} {name:<8} {result}", flush=True)
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
                   for name in NAMES},
    }
    for name in NAMES[1:]:
        summary[name] = {
            "latency_p50_overhead_ms": med(name, "latency", "p50_ms")
            - med("bare", "latency", "p50_ms"),
            "latency_p99_overhead_ms": med(name, "latency", "p99_ms")
            - med("bare", "latency", "p99_ms"),
            "throughput_ratio": med(name, "throughput", "rps") / med("bare", "throughput", "rps"),
        }
    (HERE / "overhead.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
