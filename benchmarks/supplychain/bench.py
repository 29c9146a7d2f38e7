"""bastion's artifact scanner against modelscan 0.8.8, picklescan 1.0.5 and fickling 0.1.12.

Run (from the repository root, after creating the peer venv, see README.md):
    .venv/bin/python benchmarks/supplychain/bench.py [--out benchmarks/out/supplychain]

Builds a corpus at bench time (hostile payloads only call os.getcwd/print if ever run;
nothing here loads them), then measures per technique which tool flags each file, false
positives on benign files, errors and silent skips, and throughput on a 500 MB torch
state dict and on 500 small pickles (CLI wall time, median of 3, and in-process time).
Writes results.json and a Markdown table to --out and prints the table.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import pickle
import statistics
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PEER_BIN = ROOT / "benchmarks" / ".venv-supplychain" / "bin"
PEERS = ("modelscan", "picklescan", "fickling")


# -- corpus ------------------------------------------------------------------------------

def _text(value: str) -> bytes:
    raw = value.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def _p4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


class _Reduce:
    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


GETCWD = pickle.dumps({"weights": _Reduce(os.getcwd)}, protocol=2)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _torch_zip(pkl: bytes) -> bytes:
    return _zip({"archive/data.pkl": pkl, "archive/version": b"3\n"})


def _patch_zip(data: bytes, sig: bytes, at: int, fn: Callable[[bytearray, int], None]) -> bytes:
    raw = bytearray(data)
    start = 0
    while (pos := raw.find(sig, start)) >= 0:
        fn(raw, pos + at)
        start = pos + 4
    return bytes(raw)


def _set_bit(raw: bytearray, i: int) -> None:
    raw[i] |= 1


def _bad_crc(raw: bytearray, i: int) -> None:
    struct.pack_into("<I", raw, i, 0xDEADBEEF)


def malicious(d: Path) -> dict[str, str]:
    """file name -> technique; every file is hostile."""
    import joblib
    import numpy as np
    import torch

    files: dict[str, tuple[str, bytes | Callable[[Path], object]]] = {
        "reduce_p0.pkl": ("direct call, protocol 0", pickle.dumps(_Reduce(os.getcwd), 0)),
        "reduce_p2.pkl": ("direct call, protocol 2", GETCWD),
        "eval.pkl": ("builtins.eval", pickle.dumps(_Reduce(eval, "1+1"), 2)),
        "getattr.pkl": ("getattr(__import__('os'), ...)", _p4(_call(_call(
            _glob("builtins", "getattr"), _call(_glob("builtins", "__import__"), _text("os")),
            _text("getcwd"))))),
        "attrgetter.pkl": ("operator.attrgetter on import_module", _p4(_call(_call(
            _glob("operator", "attrgetter"), _text("getcwd")),
            _call(_glob("importlib", "import_module"), _text("os"))))),
        "partial.pkl": ("functools.partial wrapper", _p4(_call(_call(
            _glob("functools", "partial"), _glob("posix", "getcwd"))))),
        "nested_loads.pkl": ("nested pickle.loads", _p4(_call(
            _glob("pickle", "loads"), b"C" + bytes([len(GETCWD)]) + GETCWD))),
        "memo_stack_global.pkl": ("STACK_GLOBAL via memo (picklescan #22)", _p4(
            _text("os") + b"\x94" + _text("getcwd") + b"\x94" + b"00h\x00h\x01\x93)R")),
        "unlisted_gadget.pkl": ("gadget missing from denylists (CVE-2026-56315 uuid)",
                                _p4(_call(_glob("uuid", "_get_command_stdout"), _text("true")))),
        "unknown_module.pkl": ("import of an unknown module", _p4(_call(
            _glob("mylib.backdoor", "run"), _text("x")))),
        "build_on_global.pkl": ("BUILD overwrites a class attribute", _p4(
            _glob("collections", "OrderedDict") + b"}" + _text("x") + b"K\x01sb")),
        "ext_opcode.pkl": ("EXT1 extension-registry import", b"\x80\x02\x82\x07)R."),
        "proto5_bytearray.pkl": ("protocol 5 BYTEARRAY8 + payload", b"\x80\x05\x96"
                                 + struct.pack("<Q", 3) + b"abc0" + GETCWD[2:]),
        "broken_tail.pkl": ("payload then parse error (GHSA-9gvj-pp9x-gcfr)",
                            GETCWD[:-1] + b"\xfe\xfe"),
        "model.cfg": ("non-standard extension (CVE-2025-1889)", GETCWD),
        "weights.safetensors": ("pickle behind a safe suffix", GETCWD),
        "torch_zip.pt": ("PyTorch zip data.pkl", lambda p: torch.save(
            {"w": _Reduce(os.getcwd)}, p)),
        "torch_legacy.pt": ("PyTorch legacy format", lambda p: torch.save(
            {"w": _Reduce(os.getcwd)}, p, _use_new_zipfile_serialization=False)),
        "zip_crc.pt": ("zip with bad CRC (CVE-2025-10156)", _patch_zip(
            _patch_zip(_torch_zip(GETCWD), b"PK\x03\x04", 14, _bad_crc), b"PK\x01\x02", 16,
            _bad_crc)),
        "zip_flags.pt": ("zip flag bits (CVE-2025-1945)", _patch_zip(_patch_zip(
            _torch_zip(GETCWD), b"PK\x03\x04", 6, _set_bit), b"PK\x01\x02", 8, _set_bit)),
        "zip_name.pt": ("zip local/central name mismatch (CVE-2025-1944)",
                        _torch_zip(GETCWD).replace(b"archive/data.pkl", b"archive/dXta.pkl", 1)),
        "nested.zip": ("pickle in a zip in a zip", _zip({"inner.zip": _zip({"m.pkl": GETCWD})})),
        "model.joblib.gz": ("joblib gzip-compressed", lambda p: joblib.dump(
            {"m": _Reduce(os.getcwd)}, p, compress=("gzip", 3))),
        "model.joblib.lz4": ("joblib lz4-compressed", lambda p: joblib.dump(
            {"m": _Reduce(os.getcwd)}, p, compress="lz4")),
        "object.npy": ("numpy object array", lambda p: np.save(
            p, np.array([_Reduce(os.getcwd)], dtype=object), allow_pickle=True)),
        "arrays.npz": ("npz member with object array", lambda p: np.savez(
            p, a=np.array([_Reduce(os.getcwd)], dtype=object))),
        "gzip.pkl.gz": ("gzip-wrapped pickle", gzip.compress(GETCWD)),
        "traversal.zip": ("zip entry ../ traversal", _zip({"../../evil.pth": b"x"})),
        "bad_offsets.safetensors": ("safetensors offsets outside the file",
                                    _safetensors({"w": {"dtype": "F32", "shape": [4],
                                                        "data_offsets": [0, 4096]}})),
        "lambda.h5": ("Keras Lambda layer (marshalled code)", _keras_lambda),
        "external.onnx": ("ONNX external data path traversal", _onnx_external),
        "saved_model.pb": ("SavedModel ReadFile/PyFunc ops", _saved_model(["ReadFile", "PyFunc"])),
        "template.gguf": ("GGUF chat template reaching Python internals (CVE-2024-34359)",
                          _gguf_template()),
    }
    d.mkdir(parents=True, exist_ok=True)
    labels = {}
    for name, (technique, content) in files.items():
        path = d / name
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        labels[name] = technique
    return labels


def _safetensors(header: dict[str, Any]) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 16


def _keras_lambda(path: Path) -> None:
    import h5py

    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda",
              "config": {"function": ["4wAAAA==", None, None], "function_type": "lambda"}}]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)


def _onnx_graph(domain: str = "", location: str | None = None) -> Any:
    import onnx

    node = onnx.helper.make_node("Relu" if not domain else "Foo", ["x"], ["y"], domain=domain)
    weight = onnx.helper.make_tensor("w", 1, [1], [1.0])
    if location is not None:
        weight.data_location = onnx.TensorProto.EXTERNAL
        weight.ClearField("float_data")
        entry = weight.external_data.add()
        entry.key, entry.value = "location", location
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", 1, [1])],
        [onnx.helper.make_tensor_value_info("y", 1, [1])], [weight])
    return onnx.helper.make_model(graph)


def _onnx_external(path: Path) -> None:
    path.write_bytes(_onnx_graph(location="../../../etc/passwd").SerializeToString())


def _field(number: int, payload: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            byte, n = n & 0x7F, n >> 7
            out += bytes([byte | (0x80 if n else 0)])
            if not n:
                return out
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _saved_model(ops: list[str]) -> bytes:
    nodes = b"".join(_field(1, _field(1, f"n{i}".encode()) + _field(2, op.encode()))
                     for i, op in enumerate(ops))
    return b"\x08\x01" + _field(2, _field(2, nodes))


def _gguf_template() -> bytes:
    key, value = b"tokenizer.chat_template", b"{{ cycler.__init__.__globals__.os.getcwd() }}"
    return (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<IQ", 8, len(value)) + value)


def benign(d: Path) -> dict[str, str]:
    """file name -> kind; standard ML files that must not be flagged."""
    import collections

    import joblib
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    y = (x[:, 0] > 0.5).astype(int)
    lr = LogisticRegression().fit(x, y)
    rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    writers: dict[str, tuple[str, Callable[[Path], object]]] = {
        "lr.pkl": ("scikit-learn pickle", lambda p: p.write_bytes(pickle.dumps(lr))),
        "pipeline.pkl": ("scikit-learn pipeline", lambda p: p.write_bytes(pickle.dumps(pipe))),
        "rf.joblib": ("scikit-learn joblib", lambda p: joblib.dump(rf, p)),
        "rf.joblib.xz": ("joblib compressed", lambda p: joblib.dump(rf, p, compress=("xz", 3))),
        "rf.joblib.lz4": ("joblib lz4-compressed", lambda p: joblib.dump(rf, p, compress="lz4")),
        "state_dict.pt": ("torch state dict", lambda p: torch.save(net.state_dict(), p)),
        "legacy.pt": ("torch legacy state dict", lambda p: torch.save(
            net.state_dict(), p, _use_new_zipfile_serialization=False)),
        "full_model.pt": ("torch full model (nn layers)", lambda p: torch.save(net, p)),
        "script.pt": ("TorchScript", lambda p: torch.jit.save(torch.jit.script(net), p)),
        "array.npy": ("numpy array", lambda p: np.save(p, x)),
        "arrays.npz": ("numpy npz", lambda p: np.savez(p, x=x, y=y)),
        "model.safetensors": ("safetensors", lambda p: save_file(
            {"w": x.astype(np.float32)}, str(p))),
        "model.onnx": ("ONNX", lambda p: p.write_bytes(_onnx_graph().SerializeToString())),
        "dict.pkl": ("OrderedDict of arrays", lambda p: p.write_bytes(pickle.dumps(
            collections.OrderedDict(w=x, b=y), protocol=5))),
        "model.gguf": ("GGUF", lambda p: p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))),
    }
    labels = {}
    for name, (kind, write) in writers.items():
        write(d / name)
        labels[name] = kind
    return labels


# -- running ----------------------------------------------------------------------------

def run_bastion(paths: list[Path]) -> dict[str, dict[str, Any]]:
    from bastion.report.finding import Severity
    from bastion.supplychain import scan_path

    out = {}
    for path in paths:
        t0 = time.process_time()
        r = scan_path(path)
        seconds = time.process_time() - t0
        flagged = r.at_or_above(Severity.LOW)
        if flagged:
            verdict, detail = "flagged", ", ".join(sorted({str(f.evidence["rule"])
                                                           for f in flagged}))
        elif r.errors:
            verdict, detail = "error", r.errors[0].message
        elif not r.files:
            verdict, detail = "skipped", r.skipped[0].reason if r.skipped else ""
        else:
            verdict, detail = "clean", ""
        out[path.name] = {"verdict": verdict, "detail": detail, "seconds": seconds}
    return out


def run_peer(tool: str, paths: list[Path]) -> dict[str, dict[str, Any]]:
    proc = subprocess.run(
        [str(PEER_BIN / "python"), str(Path(__file__).with_name("peers.py")), tool,
         *map(str, paths)], capture_output=True, text=True, timeout=1800,
    )
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            out[Path(row.pop("file")).name] = row
    for path in paths:  # a peer that died mid-run: the rest are errors
        out.setdefault(path.name, {"verdict": "error", "detail": "peer crashed",
                                   "seconds": 0.0})
    return out


def peer_seconds(tool: str, target: Path, repeat: int = 3) -> float:
    """Best CPU time of ``repeat`` scans of ``target`` by a peer, in one warm interpreter."""
    proc = subprocess.run(
        [str(PEER_BIN / "python"), str(Path(__file__).with_name("peers.py")), tool,
         *[str(target)] * repeat], capture_output=True, text=True, timeout=1800,
    )
    times = [json.loads(line)["seconds"] for line in proc.stdout.splitlines()
             if line.startswith("{")]
    return min(times) if times else float("nan")


def bastion_seconds(target: Path, repeat: int = 3) -> float:
    """Best CPU time of ``repeat`` scans of ``target`` by bastion in this (warm) process."""
    return min(run_bastion([target])[target.name]["seconds"] for _ in range(repeat))


def cli_seconds(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, capture_output=True, timeout=1800)
    return time.perf_counter() - t0


def throughput(work: Path, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Medians over ``rounds`` rounds; each round runs every tool once, back to back, so
    that the load of the shared machine hits all tools alike."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    big = work / "big" / "state_dict_500mb.pt"
    big.parent.mkdir(parents=True, exist_ok=True)
    if not big.exists():
        torch.save({f"layer{i}.weight": torch.zeros(1024, 1024) for i in range(125)}, big)
    small = work / "small"
    small.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(500):  # 500 distinct files: each model is fitted on its own data
        x = rng.random((200, 8))
        y = (x[:, 0] + 0.3 * x[:, 1] > 0.6).astype(int)
        model = (LogisticRegression() if i % 2 else DecisionTreeClassifier(max_depth=6)).fit(x, y)
        (small / f"model_{i:03d}.pkl").write_bytes(pickle.dumps(model))
    bastion = [sys.executable, "-m", "bastion.cli.main", "artifact", "scan", "-q"]
    results: dict[str, dict[str, float]] = {}
    for label, target in (("500 MB torch state dict", big), ("500 small pickles", small)):
        runs: dict[str, list[float]] = {}
        for _ in range(rounds):
            row = {"bastion (in-process CPU)": bastion_seconds(target)}
            for tool in PEERS:
                row[f"{tool} (in-process CPU)"] = peer_seconds(tool, target)
            row["bastion (CLI)"] = cli_seconds([*bastion, str(target)])
            row["modelscan (CLI)"] = cli_seconds([str(PEER_BIN / "modelscan"), "-p", str(target)])
            row["picklescan (CLI)"] = cli_seconds([str(PEER_BIN / "picklescan"), "-p",
                                                   str(target)])
            fastest = min(row[f"{tool} (in-process CPU)"] for tool in PEERS)
            row["bastion speed-up vs fastest peer"] = fastest / row["bastion (in-process CPU)"]
            for key, value in row.items():
                runs.setdefault(key, []).append(value)
        results[label] = {key: statistics.median(values) for key, values in runs.items()}
        results[label]["speed-up, lowest round"] = min(runs["bastion speed-up vs fastest peer"])
    return results


# -- report -----------------------------------------------------------------------------

def table(labels: dict[str, str], runs: dict[str, dict[str, dict[str, Any]]], title: str) -> str:
    tools = list(runs)
    lines = [f"### {title}", "", "| file | technique | " + " | ".join(tools) + " |",
             "|---|---|" + "---|" * len(tools)]
    mark = {"flagged": "✅ flagged", "clean": "❌ clean", "error": "⚠️ error",
            "skipped": "⚠️ skipped"}
    for name, technique in labels.items():
        cells = [mark[runs[t][name]["verdict"]] for t in tools]
        lines.append(f"| `{name}` | {technique} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "supplychain")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    work: Path = args.out
    mal = malicious(work / "malicious")
    ben = benign(work / "benign")
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for group, labels in (("malicious", mal), ("benign", ben)):
        paths = [work / group / n for n in labels]
        runs[f"bastion/{group}"] = run_bastion(paths)
        for tool in PEERS:
            runs[f"{tool}/{group}"] = run_peer(tool, paths)
    tools = ("bastion", *PEERS)
    summary = {}
    for tool in tools:
        m, b = runs[f"{tool}/malicious"], runs[f"{tool}/benign"]
        summary[tool] = {
            "detected": sum(r["verdict"] == "flagged" for r in m.values()),
            "malicious": len(m),
            "false_positives": sum(r["verdict"] == "flagged" for r in b.values()),
            "benign": len(b),
            "errors": sum(r["verdict"] == "error" for r in [*m.values(), *b.values()]),
            "skipped": sum(r["verdict"] == "skipped" for r in [*m.values(), *b.values()]),
        }
    speed = {} if args.skip_throughput else throughput(work / "throughput")
    (work / "results.json").write_text(json.dumps(
        {"summary": summary, "runs": runs, "throughput": speed}, indent=2))
    parts = ["| tool | detected | false positives | errors | skipped |", "|---|---|---|---|---|"]
    for tool, s in summary.items():
        parts.append(f"| {tool} | {s['detected']}/{s['malicious']} | "
                     f"{s['false_positives']}/{s['benign']} | {s['errors']} | {s['skipped']} |")
    parts += ["", table(mal, {t: runs[f"{t}/malicious"] for t in tools}, "Hostile files"), "",
              table(ben, {t: runs[f"{t}/benign"] for t in tools}, "Benign files")]
    if speed:
        parts += ["", "### Throughput (seconds; lower is better)", "",
                  "| workload | " + " | ".join(next(iter(speed.values()))) + " |",
                  "|---|" + "---|" * len(next(iter(speed.values())))]
        for label, row in speed.items():
            parts.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in row.values()) + " |")
    text = "\n".join(parts) + "\n"
    (work / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
