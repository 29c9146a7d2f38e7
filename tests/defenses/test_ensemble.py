"""Ensembles: averaged probabilities, uncertainty that flags odd inputs, abstention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from bastion.attacks import ATTACKS
from bastion.defenses import HARDENERS, build_hardener
from bastion.defenses.ensemble import Ensemble, EnsembleDifferentiable, ensemble
from bastion.defenses.smoothing import ABSTAIN
from bastion.errors import ConfigError, ShapeMismatchError
from bastion.typing import Differentiable

from ..attacks.conftest import BlackBox, TorchNet

X = np.zeros((1, 2), dtype=np.float32)


def _fixed(probs: list[list[float]]) -> TorchNet:
    """A member that answers ``probs[i]`` for input ``i`` (inputs are one-hot row ids)."""
    table = torch.log(torch.tensor(probs, dtype=torch.float32))
    layer = torch.nn.Linear(len(probs), len(probs[0]), bias=False)
    with torch.no_grad():
        layer.weight.copy_(table.T)
    return TorchNet(layer, (len(probs),), len(probs[0]))


ROWS = np.eye(3, dtype=np.float32)  # input i selects row i of every member's table


def _members() -> list[TorchNet]:
    # row 0: all agree and are sure; row 1: all agree, unsure; row 2: members split
    return [_fixed([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.9, 0.05, 0.05]]),
            _fixed([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.05, 0.9, 0.05]]),
            _fixed([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]]),
            _fixed([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.9, 0.05, 0.05]])]


def test_probabilities_are_the_members_mean_and_logits_match_them() -> None:
    model = ensemble(_members())
    assert isinstance(model, EnsembleDifferentiable) and isinstance(model, Differentiable)
    probs = model.predict_proba(ROWS)
    np.testing.assert_allclose(probs[2], [0.475, 0.2625, 0.2625], rtol=1e-5)
    torch.testing.assert_close(torch.softmax(model.logits(torch.as_tensor(ROWS)), 1).double(),
                               torch.as_tensor(probs), rtol=1e-5, atol=1e-6)


def test_entropy_is_that_of_the_mean_prediction() -> None:
    scores = ensemble(_members(), uncertainty="entropy").uncertainty(ROWS)
    mean = np.array([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.475, 0.2625, 0.2625]])
    np.testing.assert_allclose(scores, -(mean * np.log(mean)).sum(1), rtol=1e-5)
    assert scores[0] < scores[2] < scores[1]


def test_disagreement_is_the_share_of_members_outvoted() -> None:
    scores = ensemble(_members(), uncertainty="disagreement").uncertainty(ROWS)
    np.testing.assert_allclose(scores, [0.0, 0.0, 0.5])


def test_abstains_only_above_the_threshold() -> None:
    split = ensemble(_members(), uncertainty="disagreement", threshold=0.25)
    np.testing.assert_array_equal(split.predict(ROWS), [0, 0, ABSTAIN])
    np.testing.assert_array_equal(ensemble(_members()).predict(ROWS), [0, 0, 0])
    unsure = ensemble(_members(), uncertainty="entropy", threshold=1.07)
    np.testing.assert_array_equal(unsure.predict(ROWS), [0, ABSTAIN, 0])


def test_calibration_sets_the_clean_abstain_rate() -> None:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    members = [TorchNet(torch.nn.Linear(5, 4), (5,), 4, bounds=(-5.0, 5.0)) for _ in range(3)]
    x = rng.normal(size=(400, 5)).astype(np.float32)
    model = ensemble(members).calibrated(x, abstain_rate=0.1)
    assert model.threshold is not None
    assert 0.08 <= float(np.mean(model.predict(x) == ABSTAIN)) <= 0.1


def test_black_box_members_make_a_black_box_ensemble_that_counts_queries() -> None:
    members = [BlackBox(m) for m in _members()]
    model = ensemble(members)
    assert type(model) is Ensemble and not isinstance(model, Differentiable)
    model.reset_queries()
    model.predict_proba(ROWS)
    assert model.n_queries == 4 * 3


@pytest.mark.parametrize(("members", "error"), [
    ([_fixed([[0.5, 0.5]])], ConfigError),
    ([_fixed([[0.5, 0.5]]), _fixed([[0.2, 0.3, 0.5]])], ShapeMismatchError),
])
def test_ensemble_refuses_bad_members(members, error) -> None:
    with pytest.raises(error):
        ensemble(members)


def test_ensemble_refuses_an_unknown_uncertainty() -> None:
    with pytest.raises(ConfigError, match="entropy or disagreement"):
        ensemble(_members(), uncertainty="variance")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def deep(plain_cnn, digits):
    weights = [p.detach().clone() for p in plain_cnn.module.parameters()]
    result = build_hardener("ensemble", {"n_members": "3", "epochs": "8"}).apply(
        plain_cnn, digits[0], seed=0)
    for old, new in zip(weights, plain_cnn.module.parameters(), strict=True):
        assert torch.equal(old, new)  # the user's model is untouched
    return result


def test_deep_ensemble_hardener_trains_distinct_members(deep, digits) -> None:
    model = deep.model
    assert HARDENERS.get("ensemble").masks_gradients and deep.masks_gradients
    ((label, view),) = deep.adaptive
    assert label == "logit-mean" and isinstance(view, EnsembleDifferentiable)
    x = torch.as_tensor(digits[1].x[:5])
    expected = torch.stack([m.logits(x) for m in model.members]).mean(0)
    torch.testing.assert_close(view.logits(x), expected)
    assert isinstance(model, EnsembleDifferentiable) and len(model.members) == 3
    assert deep.module is None and len(deep.members) == 3  # the CLI saves member-1..3
    assert all(a is m.module for a, m in zip(deep.members, model.members, strict=True))
    first, second = (m.module[0].weight for m in model.members[:2])
    assert not torch.equal(first, second)
    assert deep.metrics["validation_accuracy"] > 0.9
    assert deep.metrics["validation_abstain_rate"] <= 0.1
    assert deep.wrapper["threshold"] == model.threshold


def test_uncertainty_ranks_noisy_and_adversarial_inputs_above_clean(deep, digits) -> None:
    model, test = deep.model, digits[1]
    clean = test.x[:150]
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(scale=0.5, size=clean.shape), 0, 1).astype(np.float32)
    # adversarial examples made against one member transfer imperfectly: members split
    adv = ATTACKS.get("pgd")(eps=0.2, steps=10)(
        model.members[0], torch.as_tensor(clean), torch.as_tensor(test.y[:150])).x_adv.numpy()
    base = model.uncertainty(clean)
    for odd, bar in ((noisy, 0.75), (adv, 0.8)):  # measured AUC 0.84 and 0.89
        labels = np.r_[np.zeros(len(clean)), np.ones(len(odd))]
        assert roc_auc_score(labels, np.r_[base, model.uncertainty(odd)]) > bar
