"""`bastion attack` in process: listing, a real run writing npz, one-line errors with exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from bastion.cli.main import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import skops.io as sio

    root = tmp_path_factory.mktemp("attack")
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    clf = LogisticRegression(max_iter=300).fit(x[:1200], d.target[:1200])
    sio.dump(clf, root / "model.skops")
    np.savez(root / "data.npz", x=x[1200:1260], y=d.target[1200:1260])
    np.savez(root / "unlabeled.npz", x=x[1200:1260])
    return {"model": root / "model.skops", "data": root / "data.npz",
            "unlabeled": root / "unlabeled.npz", "root": root}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_list_shows_every_attack_with_its_needs(capsys) -> None:
    code, out, _ = _run(["attack", "--list"], capsys)
    assert code == 0
    for name in ("fgsm", "pgd", "apgd-ce", "apgd-t", "square", "autoattack"):
        assert name in out
    assert "Differentiable" in out
    assert "``" not in out  # docstring literals are shown as plain text


@pytest.mark.parametrize("targeted", [False, True])
def test_attack_writes_results_and_prints_a_summary(files, capsys, targeted) -> None:
    out_file = files["root"] / f"adv-{targeted}.npz"
    args = ["attack", "pgd", "--model", str(files["model"]), "--data", str(files["data"]),
            "--eps", "0.2", "--out", str(out_file)] + (["--targeted"] if targeted else [])
    code, out, err = _run(args, capsys)
    assert code == 0, err
    assert "success rate" in out
    saved = np.load(out_file)
    assert saved["x_adv"].shape == (60, 64)
    assert saved["success"].dtype == bool and saved["success"].mean() > 0.3
    assert float(saved["linf"].max()) <= 0.2 + 1e-5
    assert ("targets" in saved.files) is targeted


def test_black_box_attack_counts_queries(files, capsys) -> None:
    out_file = files["root"] / "square.npz"
    code, _, err = _run(["attack", "square", "--model", str(files["model"]), "--data",
                         str(files["data"]), "--eps", "0.2", "--limit", "10", "--out",
                         str(out_file)], capsys)
    assert code == 0, err
    assert np.load(out_file)["n_queries"].min() >= 1


def test_transfer_crafts_on_the_surrogate_and_fools_the_target(files, capsys) -> None:
    import skops.io as sio

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    surrogate = files["root"] / "surrogate.skops"
    sio.dump(LogisticRegression(max_iter=200, C=0.5).fit(x[:600], d.target[:600]), surrogate)
    out_file = files["root"] / "transfer.npz"
    code, _, err = _run(["attack", "transfer", "--model", str(files["model"]), "--data",
                         str(files["data"]), "--eps", "0.2", "--surrogate", str(surrogate),
                         "--out", str(out_file)], capsys)
    assert code == 0, err
    saved = np.load(out_file)
    assert float(saved["linf"].max()) <= 0.2 + 1e-5
    assert saved["success"].mean() > 0.3  # linear models for one task share their weaknesses


@pytest.mark.parametrize(
    ("name", "extra", "words"),
    [("transfer", [], "needs --surrogate"), ("pgd", ["--surrogate", "{model}"], "only for")],
)
def test_surrogate_goes_with_transfer_only(files, capsys, name, extra, words) -> None:
    extra = [a.format(model=files["model"]) for a in extra]
    code, _, err = _run(["attack", name, "--model", str(files["model"]), "--data",
                         str(files["data"]), "--eps", "0.1", *extra], capsys)
    assert code == 2
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--eps", "-0.1"], "eps must be a positive number"),
        (["--eps", "3"], "larger than the whole input range"),
        (["--eps", "0.1", "--norm", "l7"], "unknown norm"),
        ([], "needs --eps"),
        (["--eps", "0.1", "--bounds", "1,0"], "--bounds"),
    ],
)
def test_bad_options_exit_2_with_one_line(files, capsys, extra, words) -> None:
    code, _, err = _run(["attack", "pgd", "--model", str(files["model"]), "--data",
                         str(files["data"]), *extra], capsys)
    assert code == 2
    assert words in err and err.count("\n") == 1


def test_unknown_attack_and_unlabeled_data_exit_2(files, capsys) -> None:
    code, _, err = _run(["attack", "pgdd", "--model", str(files["model"]), "--data",
                         str(files["data"]), "--eps", "0.1"], capsys)
    assert code == 2 and "did you mean" in err
    code, _, err = _run(["attack", "pgd", "--model", str(files["model"]), "--data",
                         str(files["unlabeled"]), "--eps", "0.1"], capsys)
    assert code == 2 and "no labels" in err
    code, _, err = _run(["attack", "pgd"], capsys)
    assert code == 2 and "--model" in err


def test_gradient_attack_on_a_tree_model_exits_2_naming_black_box_attacks(files, capsys) -> None:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x[:300], d.target[:300])
    path = files["root"] / "forest.skops"
    sio.dump(forest, path)
    code, _, err = _run(["attack", "pgd", "--model", str(path), "--data", str(files["data"]),
                         "--eps", "0.1"], capsys)
    assert code == 2
    assert "Differentiable" in err and "square" in err and err.count("\n") == 1
