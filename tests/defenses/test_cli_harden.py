"""`bastion harden` through the CLI entry point: the saved model loads back safely and
matches the report, and bad input is one line, exit 2, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import save_file

from bastion.cli.main import main
from bastion.data import Dataset
from bastion.models import load_model
from bastion.models.torch import TorchClassifier

from .conftest import train_digits_cnn


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["harden", *map(str, args)])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, small_train: Dataset,
          digits: tuple[Dataset, Dataset], plain_cnn: TorchClassifier) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("harden")
    test = digits[1]
    paths = {"model": root / "cnn.safetensors", "train": root / "train.npz",
             "test": root / "test.npz"}
    save_file(plain_cnn.module.state_dict(), str(paths["model"]))
    np.savez(paths["train"], x=small_train.x[:300], y=small_train.y[:300])  # type: ignore[index]
    np.savez(paths["test"], x=test.x[:120], y=test.y[:120])  # type: ignore[index]
    return paths


def test_pgd_at_writes_safetensors_that_load_back_and_a_before_after_report(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
) -> None:
    out = tmp_path / "hardened"
    before = files["model"].read_bytes()
    code, _, err = _run(capsys, "pgd-at", "--model", files["model"], "--factory",
                        "bastion.demo:digits_cnn", "--data", files["train"], "--test",
                        files["test"], "--out", out, "--eps", "0.15", "--epochs", "3",
                        "--set", "steps=3", "--set", "n-val=64", "--set", "lr=3e-3",
                        "--set", "warmup-epochs=0.5", "--profile", "quick",
                        "--n-eval", "120", "--format", "json", "--fail-on", "critical", "-q")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["hardening.json", "model.safetensors",
                                                     "report.json"]
    manifest = json.loads((out / "hardening.json").read_text())
    assert manifest["method"] == "pgd-at" and manifest["params"]["eps"] == 0.15
    assert manifest["params"]["steps"] == 3 and manifest["factory"] == "bastion.demo:digits_cnn"
    assert manifest["params"]["attack_precision"] == "auto"
    report = json.loads((out / "report.json").read_text())
    (finding,) = report["findings"]
    metrics = {m["name"]: m["value"] for m in finding["metrics"]}
    with np.load(files["test"]) as test:
        hardened = load_model(out / "model.safetensors", input_shape=(1, 8, 8),
                              factory="bastion.demo:digits_cnn")
        accuracy = float((hardened.predict_proba(test["x"]).argmax(1) == test["y"]).mean())
    assert metrics["clean_accuracy_after"] == pytest.approx(accuracy)
    assert metrics["robust_accuracy_after"] > metrics["robust_accuracy_before"]
    assert finding["evidence"]["attacks"] == ["FGSM", "PGD"]
    assert files["model"].read_bytes() == before  # the user's file is untouched


@pytest.mark.slow
def test_a_scikit_learn_twin_is_hardened_and_saved_as_onnx(
    capsys: pytest.CaptureFixture[str], forest: Path, files: dict[str, Path], tmp_path: Path,
) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    with np.load(files["train_flat"]) as flat:
        logreg = LogisticRegression(max_iter=300).fit(flat["x"], flat["y"])
    model = tmp_path / "logreg.skops"
    sio.dump(logreg, model)
    out = tmp_path / "onnx-out"
    code, _, err = _run(capsys, "fast-at", "--model", model, "--data", files["train_flat"],
                        "--out", out, "--eps", "0.1", "--epochs", "2", "--set", "n-val=32",
                        "--profile", "quick", "--n-eval", "200", "--format", "md",
                        "--fail-on", "critical", "-q")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["hardening.json", "model.onnx",
                                                     "report.md"]
    assert json.loads((out / "hardening.json").read_text())["factory"] is None
    assert "robust accuracy" in (out / "report.md").read_text()
    hardened = load_model(out / "model.onnx")
    with np.load(files["train_flat"]) as flat:
        probs = hardened.predict_proba(flat["x"][:50].astype(np.float32))
    assert probs.shape == (50, 10) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert float((probs.argmax(1) == flat_labels(files)[:50]).mean()) > 0.8


def flat_labels(files: dict[str, Path]) -> np.ndarray:
    with np.load(files["train_flat"]) as flat:
        return np.asarray(flat["y"])


@pytest.mark.slow
def test_a_retrained_torchscript_model_without_its_architecture_is_refused(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
    plain_cnn: TorchClassifier,
) -> None:
    import torch

    scripted = tmp_path / "cnn.torchscript"
    torch.jit.trace(plain_cnn.module, torch.zeros(1, 1, 8, 8)).save(str(scripted))
    out = tmp_path / "ts-out"
    code, _, err = _run(capsys, "fast-at", "--model", scripted, "--data", files["train"],
                        "--test", files["test"], "--out", out, "--epochs", "1",
                        "--set", "n-val=16", "--profile", "quick", "--n-eval", "16", "-q")
    assert code == 2 and "--factory" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".ts-out*"))


@pytest.mark.slow
def test_distillation_report_says_it_gives_no_robustness_under_adaptive_attack(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
) -> None:
    out = tmp_path / "distilled"
    code, _, err = _run(capsys, "distillation", "--model", files["model"], "--factory",
                        "bastion.demo:digits_cnn", "--data", files["train"], "--test",
                        files["test"], "--out", out, "--eps", "0.2", "--epochs", "3",
                        "--profile", "quick", "--n-eval", "120", "--format", "json", "-q")
    report = json.loads((out / "report.json").read_text())
    (finding,) = report["findings"]
    assert code == 1, err  # a high finding at the default --fail-on high
    assert "gives no robustness against adaptive attacks" in finding["title"]
    assert any("logits / T" in a for a in finding["evidence"]["adaptive_attacks"])


@pytest.mark.parametrize(("args", "message"), [
    (["pgd-at"], "needs a Differentiable model"),
    (["dp-sgd", "--set", "target-epsilon=0.01"], "raise the target epsilon"),
    (["pgd-att"], "unknown hardening method 'pgd-att'; did you mean pgd-at"),
    (["trades", "--set", "beta"], "write key=value"),
    (["trades", "--set", "gamma=1"], "no parameter 'gamma'"),
    (["distillation", "--eps", "big"], "--eps 'big' must be a number"),
    (["pgd-at", "--set", "attack-precision=fp16"],
     "pgd-at attack-precision must be one of auto, fp32, bf16; got 'fp16'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
    args: list[str], message: str, forest: Path,
) -> None:
    out = tmp_path / "never"
    model = forest if args == ["pgd-at"] else files["model"]
    flat = files["train_flat"] if args == ["pgd-at"] else files["train"]
    code, _, err = _run(capsys, *args, "--model", model, "--factory", "bastion.demo:digits_cnn",
                        "--data", flat, "--out", out, "--profile", "quick", "-q")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".never*"))


@pytest.fixture(scope="module")
def forest(files: dict[str, Path], small_train: Dataset) -> Path:
    """A random forest saved with skops, and flat training data for it."""
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    assert small_train.y is not None
    x = small_train.x.reshape(len(small_train), -1)
    path = files["model"].parent / "forest.skops"
    sio.dump(RandomForestClassifier(n_estimators=3, random_state=0).fit(x, small_train.y), path)
    files["train_flat"] = files["model"].parent / "flat.npz"
    np.savez(files["train_flat"], x=x, y=small_train.y)
    return path


def test_a_state_dict_without_its_recipe_is_refused(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
) -> None:
    code, _, err = _run(capsys, "pgd-at", "--model", files["model"], "--data", files["train"],
                        "--out", tmp_path / "x", "-q")
    assert code == 2 and "--factory" in err and len(err.strip().splitlines()) == 1


def test_an_existing_output_folder_is_never_overwritten(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path,
) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = _run(capsys, "pgd-at", "--model", files["model"], "--data", files["train"],
                        "--out", out, "-q")
    assert code == 2 and "not an empty folder" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_train_digits_cnn_helper_is_deterministic(small_train: Dataset) -> None:
    a = train_digits_cnn(small_train, epochs=1)
    b = train_digits_cnn(small_train, epochs=1)
    probe = small_train.x[:5]
    np.testing.assert_array_equal(a.predict_proba(probe), b.predict_proba(probe))


def test_list_names_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--list")
    assert code == 0
    assert all(name in out for name in ("pgd-at", "trades", "fast-at", "dp-sgd",
                                        "distillation"))


def test_missing_arguments_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "pgd-at")
    assert code == 2 and "give a METHOD, --model, --data and --out" in err
