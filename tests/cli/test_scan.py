"""`bastion scan` through the real CLI in a subprocess: bad input, exit codes, outputs."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _bastion(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("BASTION_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("scan-inputs")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    sio.dump(LogisticRegression(max_iter=500).fit(x, y), root / "model.skops")
    np.savez(root / "train.npz", x=x[:80], y=y[:80])
    np.savez(root / "test.npz", x=x[80:], y=y[80:])
    np.savez(root / "empty.npz", x=np.zeros((0, 4), np.float32), y=np.zeros(0, np.int64))
    np.savez(root / "wide.npz", x=x[:, :3], y=y)
    nan = x.copy()
    nan[3, 2] = np.nan
    np.savez(root / "nan.npz", x=nan, y=y)
    np.savez(root / "labels.npz", x=x, y=np.where(y == 2, 7, y))
    (root / "noise.bin").write_bytes(bytes(range(256)) * 4)
    (root / "pickled.pkl").write_bytes(b"\x80\x02cposix\ngetcwd\n)R.")  # never run
    (root / "notmodel.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    (root / "adir").mkdir()
    return {p.name.split(".")[0]: p for p in root.iterdir()}


BAD = [
    ("missing file", ["--model", "nope.onnx", "--data", "{train}"], "does not exist"),
    ("unreadable (a folder)", ["--model", "{adir}", "--data", "{train}"], ""),
    ("empty dataset", ["--model", "{model}", "--data", "{empty}"], "empty"),
    ("shape does not fit", ["--model", "{model}", "--data", "{wide}"], "shape"),
    ("NaN in data", ["--model", "{model}", "--data", "{nan}"], "NaN"),
    ("labels out of range", ["--model", "{model}", "--data", "{labels}"], "label"),
    ("unknown format", ["--model", "{noise}", "--data", "{train}"], "content is unknown"),
    ("hostile pickle", ["--model", "{pickled}", "--data", "{train}"], "bastion artifact scan"),
    ("pickle not a model", ["--model", "{notmodel}", "--data", "{train}"], "cannot adapt"),
    ("unknown check", ["--data", "{train}", "--checks", "no-such"], "unknown check"),
    ("bad severity", ["--data", "{train}", "--fail-on", "severe"], "fail_on"),
    ("nothing given", [], "nothing to scan"),
    ("zero threads", ["--data", "{train}", "--threads", "0"], "--threads must be at least 1"),
    ("eps not numbers", ["--data", "{train}", "--eps", "0.1,big"], "comma-separated numbers"),
    ("eps not positive", ["--data", "{train}", "--eps", "0"], "positive numbers"),
    ("unknown norm", ["--data", "{train}", "--norm", "l1"], "norm"),
    ("zero jobs", ["--model", "{model}", "--data", "{train}", "--jobs", "0"], "--jobs"),
    ("surrogate without model", ["--data", "{train}", "--surrogate", "{model}"],
     "--surrogate needs --model"),
    ("hostile surrogate", ["--model", "{model}", "--data", "{train}", "--surrogate",
                           "{pickled}"], "bastion artifact scan"),
]


@pytest.mark.parametrize(("case", "args", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_no_report(
    files: dict[str, Path], tmp_path: Path, case: str, args: list[str], needle: str
) -> None:
    argv = [a.format(**files) for a in args]
    out = tmp_path / "report.html"
    result = _bastion("scan", *argv, "--out", out, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bastion: error: ")
    assert "Traceback" not in result.stderr
    assert needle.lower() in lines[0].lower()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_scan_writes_json_that_lists_checks_and_exit_code_follows_fail_on(
    files: dict[str, Path], tmp_path: Path
) -> None:
    args = ["scan", "--model", files["model"], "--data", files["train"], "--test",
            files["test"], "--format", "json",
            "--checks", "artifact-integrity,data-quality,model-baseline"]
    result = _bastion(*args, "--fail-on", "critical", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["metadata"]["checks_run"]
    roles = {a["role"] for a in report["metadata"]["artifacts"]}
    assert roles == {"model", "train", "test"}
    worst_info = _bastion(*args, "--fail-on", "info", cwd=tmp_path)
    assert worst_info.returncode == (1 if report["findings"] or report["errors"] else 0)


def test_check_options_reach_the_robustness_check(files: dict[str, Path],
                                                  tmp_path: Path) -> None:
    result = _bastion("scan", "--model", files["model"], "--data", files["train"], "--test",
                      files["test"], "--checks", "robustness", "--eps", "0.5,0.1", "--norm",
                      "l2", "--surrogate", files["model"], "--format", "json", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    (finding,) = json.loads(result.stdout)["findings"]
    metrics = {m["name"]: m["value"] for m in finding["metrics"]}
    assert "l2" in finding["title"]
    assert {"robust_accuracy@eps=0.1", "robust_accuracy@eps=0.5"} <= set(metrics)
    # The surrogate is the model itself, so its PGD examples transfer at white-box strength.
    assert metrics["transfer_rate"] > 0


def test_nothing_applicable_exits_3(files: dict[str, Path], tmp_path: Path) -> None:
    result = _bastion("scan", "--data", files["train"], "--checks", "model-baseline",
                      "--format", "json", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["skipped"][0]["check"] == "model-baseline"


def test_trust_is_recorded_and_token_never_is(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_SCAN_TOKEN", "s3cret-token")
    result = _bastion("scan", "--model", files["model"], "--data", files["train"],
                      "--trust", files["model"], "--checks", "model-baseline",
                      "--format", "json", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    config = json.loads(result.stdout)["metadata"]["config"]
    assert config["trust"] == [str(files["model"])]
    assert "s3cret-token" not in result.stdout + result.stderr
