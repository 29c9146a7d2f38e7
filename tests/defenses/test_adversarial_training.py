"""PGD-AT, TRADES and fast AT: they buy robustness, follow their schedule, never touch the
user's model, and fast AT's catastrophic-overfitting check fires."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier

from bastion.attacks.evasion.pgd import PGD
from bastion.data import Dataset
from bastion.defenses import build_hardener, check_applicable
from bastion.defenses.adversarial_training import FastAdversarialTraining, pgd_inner
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models import SklearnClassifier
from bastion.models.torch import TorchClassifier

EPS = 0.15


def _robust_accuracy(model: TorchClassifier, data: Dataset, n: int = 200) -> float:
    assert data.y is not None
    result = PGD(eps=EPS, steps=20)(model, data.x[:n], data.y[:n],
                                    generator=torch.Generator().manual_seed(0))
    return result.robust_accuracy


@pytest.mark.parametrize("method", [pytest.param("pgd-at", marks=pytest.mark.slow),
                                    pytest.param("trades", marks=pytest.mark.slow), "fast-at"])
def test_training_buys_robustness_without_touching_the_user_model(
    method: str, plain_cnn: TorchClassifier, small_train: Dataset,
    digits: tuple[Dataset, Dataset],
) -> None:
    before = {k: v.clone() for k, v in plain_cnn.module.state_dict().items()}
    hardener = build_hardener(method, {"eps": str(EPS), "epochs": "3", "steps": "5",
                                       "warmup-epochs": "1", "n-val": "128", "lr": "3e-3"})

    result = hardener.apply(plain_cnn, small_train, seed=0)

    test = digits[1]
    after, before_acc = _robust_accuracy(result.model, test), _robust_accuracy(plain_cnn, test)
    assert after > before_acc + 0.1
    assert result.module is not plain_cnn.module and result.model is not plain_cnn
    assert all(torch.equal(before[k], v) for k, v in plain_cnn.module.state_dict().items())
    assert not result.masks_gradients and result.method == method
    assert [row["epoch"] for row in result.log] == [1.0, 2.0, 3.0]
    assert 0.0 <= result.metrics["validation_robust_accuracy"] <= 1.0


def test_same_seed_same_weights(plain_cnn: TorchClassifier, small_train: Dataset) -> None:
    hardener = FastAdversarialTraining(eps=EPS, epochs=1, n_val=32)
    a = hardener.apply(plain_cnn, small_train, seed=3).module
    b = hardener.apply(plain_cnn, small_train, seed=3).module
    c = hardener.apply(plain_cnn, small_train, seed=4).module
    assert a is not None and b is not None and c is not None
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(),
                                                     strict=True))


@pytest.mark.parametrize(("warmup", "t", "expected"), [
    (2.0, 0.0, 0.0), (2.0, 1.0, 0.05), (2.0, 2.0, 0.1), (2.0, 5.0, 0.1), (0.0, 0.0, 0.1),
])
def test_eps_warms_up_linearly(warmup: float, t: float, expected: float) -> None:
    assert FastAdversarialTraining(eps=0.1, warmup_epochs=warmup).eps_at(t) == \
        pytest.approx(expected)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_inner_maximisation_stays_in_budget_and_raises_the_loss(
    norm: str, plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset],
) -> None:
    test = digits[1]
    assert test.y is not None
    x = torch.as_tensor(test.x[:64])
    y = torch.as_tensor(test.y[:64]).long()
    eps = EPS if norm == "linf" else 1.0
    gen = torch.Generator().manual_seed(0)
    x_adv = pgd_inner(plain_cnn, x, y, eps=eps, norm=norm, steps=10,  # type: ignore[arg-type]
                      step_size=2.5 * eps / 10, generator=gen)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy
        assert float(ce(plain_cnn.logits(x_adv), y)) > 3 * float(ce(plain_cnn.logits(x), y))


@pytest.mark.parametrize(("fgsm", "pgd", "flagged"), [
    (0.80, 0.70, False), (0.80, 0.61, False), (0.80, 0.59, True), (0.90, 0.05, True),
])
def test_catastrophic_overfitting_is_an_fgsm_pgd_gap(fgsm: float, pgd: float,
                                                      flagged: bool) -> None:
    reason = FastAdversarialTraining(overfit_gap=0.2).check_overfitting(fgsm, pgd)
    assert (reason is not None) == flagged
    if flagged:
        assert reason is not None and "catastrophic overfitting" in reason


def test_fast_at_with_a_huge_step_overfits_and_is_caught(
    plain_cnn: TorchClassifier, small_train: Dataset,
) -> None:
    # FGSM steps of 4x eps with a tiny gap tolerance: the check must stop the run.
    hardener = FastAdversarialTraining(eps=0.2, step_size=0.8, epochs=4, warmup_epochs=0,
                                       overfit_gap=0.0, n_val=64, lr=3e-3)
    result = hardener.apply(plain_cnn, small_train, seed=0)
    assert any("catastrophic overfitting" in note for note in result.notes)
    assert len(result.log) < 4


def test_a_tree_ensemble_is_refused_with_the_methods_that_would_work(
    small_train: Dataset,
) -> None:
    assert small_train.y is not None
    x = small_train.x.reshape(len(small_train), -1)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, small_train.y)
    model = SklearnClassifier(forest)
    with pytest.raises(UnsupportedModelError, match=r"pgd-at.*Differentiable"):
        check_applicable(build_hardener("pgd-at"), model)
    flat = Dataset(x=x, y=small_train.y)
    with pytest.raises(UnsupportedModelError, match="trains a torch network"):
        build_hardener("trades").apply(model, flat)


@pytest.mark.parametrize(("params", "message"), [
    ({"epsilon": "0.1"}, "no parameter 'epsilon'; known: .*eps"),
    ({"eps": "big"}, "must be a number"),
    ({"norm": "l1"}, "must be one of linf, l2"),
    ({"from-scratch": "maybe"}, "true or false"),
    ({"patience": "x"}, "does not parse"),
])
def test_bad_parameters_are_one_line_config_errors(params: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_hardener("pgd-at", params)


def test_cli_strings_parse_by_field_type() -> None:
    hardener = build_hardener("trades", {"eps": "8/255", "epochs": "2", "beta": "3",
                                         "patience": "none", "from-scratch": "yes"})
    assert hardener == build_hardener("trades", {"eps": 8 / 255, "epochs": 2, "beta": 3.0,
                                                 "patience": None, "from_scratch": True})


def test_unlabelled_or_misshaped_data_is_refused(plain_cnn: TorchClassifier,
                                                 small_train: Dataset) -> None:
    from bastion.errors import InvalidDataError, ShapeMismatchError

    hardener = FastAdversarialTraining(epochs=1)
    with pytest.raises(InvalidDataError, match="no labels"):
        hardener.apply(plain_cnn, Dataset(x=small_train.x), val=small_train)
    with pytest.raises(ShapeMismatchError, match="shape"):
        hardener.apply(plain_cnn, Dataset(x=np.zeros((10, 64), np.float32),
                                          y=np.zeros(10, np.int64)), val=small_train)


@pytest.mark.parametrize(("method", "params", "message"), [
    ("trades", {"beta": "-1"}, "beta must be >= 0"),
    ("fast-at", {"overfit-gap": "2"}, "overfit-gap must lie in"),
    ("pgd-at", {"eps": "0"}, "needs eps > 0"),
    ("pgd-at", {"steps": "0"}, "at least 1"),
])
def test_bad_hyper_parameters_fail_before_training(
    method: str, params: dict[str, str], message: str, plain_cnn: TorchClassifier,
    small_train: Dataset,
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_hardener(method, params).apply(plain_cnn, small_train)


def test_training_reports_progress_per_epoch(plain_cnn: TorchClassifier,
                                             small_train: Dataset) -> None:
    from bastion.progress import ProgressEvent

    events: list[ProgressEvent] = []
    FastAdversarialTraining(eps=EPS, epochs=2, n_val=16).apply(
        plain_cnn, small_train, progress=events.append)
    assert [(e.task, e.completed, e.total) for e in events] == [
        ("fast-at", 0, 2), ("fast-at", 1, 2), ("fast-at", 2, 2)]
    assert events[-1].done
