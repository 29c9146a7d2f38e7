"""Reference-model training: balanced IN/OUT halves, recipes, seeding."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import SGDClassifier

from bastion.attacks.inference import EntryPointRecipe, LiRA, SklearnRecipe, audit_membership
from bastion.attacks.inference._references import paired_masks, train_references
from bastion.data.dataset import Dataset
from bastion.errors import ConfigError
from bastion.models.sklearn import SklearnClassifier


def test_every_record_is_in_exactly_half_the_models_stratified() -> None:
    y = np.repeat([0, 1, 2], [7, 10, 13])
    masks = paired_masks(y, 6, np.random.default_rng(0))
    assert (masks.sum(axis=0) == 3).all()
    for k in range(6):
        for c, n in ((0, 7), (1, 10), (2, 13)):
            assert abs(int(masks[k, y == c].sum()) - n / 2) <= 0.5


def test_sklearn_recipe_is_seeded_per_model() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    recipe = SklearnRecipe(estimator=SGDClassifier(loss="log_loss"), bounds=(-50.0, 50.0))
    a = train_references(recipe, x, y, n_models=4, seed=1)
    b = train_references(recipe, x, y, n_models=4, seed=1)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.in_mask, b.in_mask)
    assert a.probs.shape == (4, len(x), 2)
    # Models trained on the record fit it better than those that were not.
    p_true = np.take_along_axis(a.probs, np.broadcast_to(y[None, :, None], (4, len(y), 1)),
                                axis=-1)[..., 0]
    assert p_true[a.in_mask].mean() > p_true[~a.in_mask].mean()


@pytest.mark.parametrize("bad", ["no_colon", ":fn", "mod:"])
def test_malformed_entry_point_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"package\.module:train_fn"):
        EntryPointRecipe(entry_point=bad)


def test_missing_entry_point_is_refused() -> None:
    recipe = EntryPointRecipe(entry_point="bastion_no_such_module:train")
    with pytest.raises(ConfigError, match="cannot load training recipe"):
        recipe.fit(np.zeros((2, 2)), np.array([0, 1]), seed=0)


_TORCH_RECIPE = """
    import torch
    from bastion.models.torch import TorchClassifier

    def train(x, y, *, seed):
        gen = torch.Generator().manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 32), torch.nn.ReLU(),
                                  torch.nn.Linear(32, 2))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        xt = torch.as_tensor(x, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.long)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(150):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()
        return TorchClassifier(net, input_shape=(x.shape[1],), bounds=(-50.0, 50.0))

    def not_a_model(x, y, *, seed):
        return "weights.bin"
"""


@pytest.fixture
def torch_recipe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_recipe_mod.py").write_text(textwrap.dedent(_TORCH_RECIPE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_recipe_mod"


def test_torch_entry_point_recipe_drives_lira(torch_recipe_module: str) -> None:
    recipe = EntryPointRecipe(entry_point=f"{torch_recipe_module}:train")
    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    target = recipe.fit(x[:200], y[:200], seed=123)
    audit = audit_membership(target, Dataset(x=x[:200], y=y[:200]),
                             Dataset(x=x[200:400], y=y[200:400]),
                             attacks=[LiRA(online=False)], recipe=recipe, n_references=4)
    assert audit.references is not None and audit.references.probs.shape == (4, 400, 2)
    assert audit.results[0].auc > 0.5


def test_entry_point_must_return_a_classifier(torch_recipe_module: str) -> None:
    recipe = EntryPointRecipe(entry_point=f"{torch_recipe_module}:not_a_model")
    with pytest.raises(ConfigError, match="must return a Classifier"):
        recipe.fit(np.zeros((2, 2)), np.array([0, 1]), seed=0)


def test_sklearn_recipe_wraps_in_the_sklearn_adapter() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    model = SklearnRecipe(estimator=SGDClassifier(), bounds=(-1e4, 1e4)).fit(x, y, seed=0)
    assert isinstance(model, SklearnClassifier) and model.n_classes == 2
