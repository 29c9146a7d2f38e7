"""`bastion attack-privacy` in process: real runs and one-line errors with exit 2."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from bastion.cli.main import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import skops.io as sio

    root = tmp_path_factory.mktemp("privacy")
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    sio.dump(LogisticRegression(max_iter=300).fit(x[:400], y[:400]), root / "model.skops")
    torch.manual_seed(0)
    save_file(torch.nn.Linear(64, 10).state_dict(), root / "linear.safetensors")
    np.savez(root / "train.npz", x=x[:400], y=y[:400])
    np.savez(root / "test.npz", x=x[400:800], y=y[400:800])
    np.savez(root / "pool.npz", x=x[800:1200])
    np.savez(root / "empty.npz", x=x[:0], y=y[:0])
    tab = np.column_stack([x[:300, :5], np.arange(300) % 2]).astype(np.float32)
    np.savez(root / "tab.npz", x=tab, y=(tab[:, 2] > 0.3).astype(int))
    sio.dump(LogisticRegression().fit(tab, tab[:, 2] > 0.3), root / "tabmodel.skops")
    (root / "recipe_mod.py").write_text(textwrap.dedent("""
        from sklearn.linear_model import LogisticRegression
        from bastion.models.sklearn import SklearnClassifier

        def train(x, y, *, seed):
            est = LogisticRegression(max_iter=300, random_state=seed).fit(x, y)
            return SklearnClassifier(est)

        def linear():
            import torch
            return torch.nn.Linear(64, 10)
    """))
    return {"root": root, **{p.stem: p for p in root.iterdir()}}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def _ok(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        main(args)
    except SystemExit as stop:
        assert not stop.code, capsys.readouterr().err
    return capsys.readouterr().out


def test_membership_with_recipe_writes_json(files: dict[str, Path],
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(files["root"]))
    report = files["root"] / "mia.json"
    out = _ok(["attack-privacy", "membership", "-m", str(files["model"]), "--train",
               str(files["train"]), "--test", str(files["test"]), "--attacks",
               "loss-threshold,lira-offline", "--recipe", "recipe_mod:train",
               "--n-references", "4", "--json", str(report)], capsys)
    assert "lira-offline" in out and "TPR@0.1%FPR" in out
    data = json.loads(report.read_text())
    assert [r["attack"] for r in data["results"]] == ["loss-threshold", "lira-offline"]
    assert data["results"][0]["n_target_queries"] == 800


def test_sklearn_model_without_recipe_clones_its_estimator(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = files["root"] / "mia-clone.json"
    _ok(["attack-privacy", "membership", "-m", str(files["model"]), "--train",
         str(files["train"]), "--test", str(files["test"]), "--attacks", "loss-threshold,rmia",
         "--n-references", "2", "--json", str(report)], capsys)
    data = json.loads(report.read_text())
    assert [r["attack"] for r in data["results"]] == ["loss-threshold", "rmia-online"]
    assert data["skipped"] == {}


def test_torch_model_without_recipe_says_what_was_skipped(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(files["root"]))
    out = _ok(["attack-privacy", "membership", "-m", str(files["linear"]), "--factory",
               "recipe_mod:linear", "--train", str(files["train"]), "--test",
               str(files["test"]), "--attacks", "loss-threshold,rmia"], capsys)
    assert "skipped" in out and "rmia-online" in out


def test_extract_knockoff_reports_fidelity(files: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    report = files["root"] / "ext.json"
    out = _ok(["attack-privacy", "extract", "-m", str(files["model"]), "--pool",
               str(files["pool"]), "--eval", str(files["test"]), "--budget", "200",
               "--rounds", "2", "--json", str(report)], capsys)
    assert "fidelity" in out
    data = json.loads(report.read_text())
    assert data["n_queries"] == 200 and data["steps"][-1]["fidelity"] > 0.7


def test_invert_writes_reconstructions(files: dict[str, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out_file = files["root"] / "rec.npz"
    out = _ok(["attack-privacy", "invert", "-m", str(files["model"]), "-d",
               str(files["test"]), "--steps", "50", "-o", str(out_file)], capsys)
    assert "classes identified" in out
    with np.load(out_file) as saved:
        assert saved["reconstructions"].shape == (10, 64)


@pytest.mark.parametrize(("args", "message"), [
    (["extract", "--eval", "{test}", "--pool", "{pool}", "--budget", "0"], "--budget 0"),
    (["extract", "--eval", "{test}", "--strategy", "knockoff"], "needs --pool"),
    (["membership", "--train", "{train}", "--test", "{empty}"], "has no samples"),
    (["membership", "--train", "{train}", "--test", "{test}", "--attacks", "lira",
      "--recipe", "recipe_mod:train", "--n-references", "2"], "n_references to 4"),
    (["membership", "--train", "{train}", "--test", "{test}", "--attacks", "lira", "--recipe",
      "recipe_mod:train", "--n-references", "3"], "even number"),
    (["membership", "--train", "{train}", "--test", "{test}", "--attacks", "liar"],
     "unknown membership attack"),
    (["attribute", "-m", "{tabmodel}", "--train", "{tab}", "--aux", "{tab}", "--column", "9"],
     "out of range"),
    (["attribute", "-m", "{tabmodel}", "--train", "{tab}", "--aux", "{tab}", "--column", "age"],
     "no column named 'age'"),
])
def test_bad_input_is_one_line_and_exit_2(files: dict[str, Path], args: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(files["root"]))
    filled = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    model = [] if "-m" in filled else ["-m", str(files["model"])]
    code, _, err = _run(["attack-privacy", filled[0], *model, *filled[1:]], capsys)
    assert code == 2
    assert err.startswith("bastion: error:") and message in err
    assert len(err.strip().splitlines()) == 1
