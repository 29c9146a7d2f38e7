"""`bastion data audit` through the real CLI: report, cleaned copy, exit codes, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bastion.attacks.poisoning import BadNets
from bastion.cli.main import main
from bastion.data.demo import demo_breast_cancer


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def bastion(capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run ``bastion data ...`` in this process through the real entry point (``main``)."""
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("BASTION_DEBUG", raising=False)

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main(["data", *map(str, args)])
        out = capsys.readouterr()
        code = done.value.code
        return Run(code if isinstance(code, int) else 1, out.out, out.err)

    return run


@pytest.fixture(scope="module")
def backdoored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Scaled breast cancer with 5 % BadNets rows, saved as npz; returns path and indices."""
    train, _ = demo_breast_cancer(0)
    assert train.y is not None
    x = (train.x - train.x.min(axis=0)) / (np.ptp(train.x, axis=0) + 1e-12)
    res = BadNets(target=0, fraction=0.05, image=False)(x, train.y,
                                                       generator=np.random.default_rng(0))
    path = tmp_path_factory.mktemp("data") / "poisoned.npz"
    np.savez(path, x=res.x, y=res.y)
    return path, res.indices


def test_audit_reports_the_backdoor_and_writes_a_clean_copy(
        bastion: Callable[..., Run], backdoored: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, planted = backdoored
    before = path.read_bytes()
    clean = tmp_path / "clean.npz"
    run = bastion("audit", path, "--out", clean, "-q")
    assert run.returncode == 1, run.stderr  # a high finding
    report = json.loads(run.stdout)
    high = next(f for f in report["findings"] if f["severity"] == "high")
    rows = {r["row"] for r in high["evidence"]["rows"]}
    assert set(planted.tolist()) <= rows and len(rows - set(planted.tolist())) <= 2
    summary = next(f for f in report["findings"] if f["id"] == "poisoning/summary")
    assert summary["charts"] and len(summary["evidence"]["per_class"]) == 2
    assert path.read_bytes() == before
    with np.load(clean) as cleaned:
        n_suspect = report["metadata"]["config"]["suspect"]
        assert len(cleaned["y"]) == 426 - n_suspect
        assert not (cleaned["x"][:, -3:] == 1.0).all(axis=1).any()  # no triggered row left


def test_report_file_and_fail_on(bastion: Callable[..., Run], backdoored: tuple[Path, np.ndarray],
                                tmp_path: Path) -> None:
    path, _ = backdoored
    out = tmp_path / "r.md"
    run = bastion("audit", path, "--report", out, "--fail-on", "critical", "-q")
    assert run.returncode == 0, run.stderr
    assert out.read_text().startswith("# bastion report")


def _save(tmp_path: Path, x: np.ndarray, y: np.ndarray | None) -> Path:
    path = tmp_path / "bad.npz"
    if y is None:
        np.savez(path, x=x)
    else:
        np.savez(path, x=x, y=y)
    return path


@pytest.mark.parametrize(("x", "y"), [
    (np.zeros((10, 3)), None),                                      # labels missing
    (np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10, dtype=int)),  # one class
    (np.array([[np.nan, 1.0]] * 5 + [[0.0, 1.0]] * 5), np.repeat([0, 1], 5)),  # NaN
])
def test_bad_input_is_one_line_and_exit_2(bastion: Callable[..., Run], tmp_path: Path,
                                         x: np.ndarray, y: np.ndarray | None) -> None:
    run = bastion("audit", _save(tmp_path, x, y))
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "error" in run.stderr


def test_out_may_not_overwrite_the_input(bastion: Callable[..., Run],
                                         backdoored: tuple[Path, np.ndarray]) -> None:
    path, _ = backdoored
    run = bastion("audit", path, "--out", path)
    assert run.returncode == 2 and "never overwritten" in run.stderr


@pytest.mark.parametrize(("model_classes", "data_classes", "model_features"), [
    (2, 3, 4),  # the data has a label the model never saw
    (3, 2, 4),  # the model knows a class the data lacks
    (2, 2, 5),  # rows and model disagree on the feature count
])
def test_model_whose_classes_do_not_match_is_refused(
        bastion: Callable[..., Run], tmp_path: Path, model_classes: int, data_classes: int,
        model_features: int) -> None:
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    fit = LogisticRegression().fit(rng.normal(size=(60, model_features)),
                                   np.arange(60) % model_classes)
    dump(fit, tmp_path / "m.skops")
    data = _save(tmp_path, x, np.arange(60) % data_classes)
    clean = tmp_path / "clean.npz"
    run = bastion("audit", data, "--model", tmp_path / "m.skops", "--out", clean)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "error" in run.stderr
    assert not clean.exists()


@pytest.mark.slow  # ~10 s: the full audit of 1347 digit rows plus Neural Cleanse
def test_with_a_model_neural_cleanse_names_the_target(bastion: Callable[..., Run],
                                                      tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    from bastion.data.demo import demo_digits

    train, _ = demo_digits(0)
    assert train.y is not None
    res = BadNets(target=3, fraction=0.05, patch_size=2)(train.x, train.y,
                                                         generator=np.random.default_rng(0))
    np.savez(tmp_path / "d.npz", x=res.x, y=res.y)
    dump(LogisticRegression(max_iter=500).fit(res.x.reshape(len(res.x), -1), res.y),
         tmp_path / "m.skops")
    clean = tmp_path / "clean.npz"
    run = bastion("audit", tmp_path / "d.npz", "--model", tmp_path / "m.skops",
                  "--input-shape", "1,8,8", "--out", clean, "-q")
    assert run.returncode == 1, run.stderr
    ids = {f["id"] for f in json.loads(run.stdout)["findings"]}
    assert "poisoning/backdoor-target-3" in ids
    with np.load(clean) as cleaned:  # every triggered row is gone
        assert not (cleaned["x"][:, 0, -2:, -2:] == 1.0).all(axis=(1, 2)).any()
