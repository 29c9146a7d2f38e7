"""The hardening contract: every registered method conforms, lookups explain misses, and
copies never share state with the user's model."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bastion.data import Dataset
from bastion.defenses import (
    HARDENERS,
    build_hardener,
    copy_torch_model,
    hardener_name,
    supported_hardeners,
)
from bastion.defenses._base import parse_fraction
from bastion.errors import ConfigError, UnknownPluginError, UnsupportedModelError
from bastion.models import SklearnClassifier, as_classifier
from bastion.models.torch import TorchClassifier
from bastion.typing import Classifier

TRAINING = {"pgd-at", "trades", "fast-at", "dp-sgd", "distillation"}


@pytest.mark.parametrize("name", HARDENERS.names())
def test_every_method_follows_the_contract(name: str) -> None:
    cls = HARDENERS.get(name)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert all(f.kw_only for f in dataclasses.fields(cls) if f.init)
    assert isinstance(cls.masks_gradients, bool)
    assert cls.requires and all(isinstance(r, type) for r in cls.requires)
    params = inspect.signature(cls.apply).parameters
    assert {"model", "train", "val", "seed", "progress"} <= set(params)
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY
               for k in ("val", "seed", "progress"))
    assert hardener_name(cls) == name
    build_hardener(name)  # the defaults alone configure it


def test_the_training_methods_are_registered() -> None:
    assert set(HARDENERS.names()) >= TRAINING
    assert HARDENERS.get("distillation").masks_gradients
    assert not HARDENERS.get("pgd-at").masks_gradients


def test_unknown_method_suggests_the_closest() -> None:
    with pytest.raises(UnknownPluginError, match="did you mean trades"):
        HARDENERS.get("trade")


def test_a_tree_ensemble_supports_no_training_method(small_train: Dataset) -> None:
    assert small_train.y is not None
    x = small_train.x.reshape(len(small_train), -1)
    forest = SklearnClassifier(RandomForestClassifier(n_estimators=2, random_state=0)
                               .fit(x, small_train.y))
    assert not TRAINING & set(supported_hardeners(forest))


def test_copy_shares_nothing_with_the_original(plain_cnn: TorchClassifier) -> None:
    copied = copy_torch_model(plain_cnn)
    assert copied is not plain_cnn and copied.module is not plain_cnn.module
    with torch.no_grad():
        next(copied.module.parameters()).add_(1.0)
    assert not torch.equal(next(copied.module.parameters()), next(plain_cnn.module.parameters()))
    assert copied.input_shape == plain_cnn.input_shape and copied.bounds == plain_cnn.bounds


def test_copy_of_a_frozen_twin_is_trainable_and_the_twin_stays_frozen(
    small_train: Dataset,
) -> None:
    assert small_train.y is not None
    x = small_train.x.reshape(len(small_train), -1)
    twin = as_classifier(LogisticRegression(max_iter=200).fit(x, small_train.y))
    assert isinstance(twin, TorchClassifier)
    copied = copy_torch_model(twin)
    assert all(p.requires_grad for p in copied.module.parameters())
    assert not any(p.requires_grad for p in twin.module.parameters())


def test_copy_of_torchscript_has_leaf_parameters(plain_cnn: TorchClassifier) -> None:
    scripted = torch.jit.trace(plain_cnn.module, torch.zeros(1, 1, 8, 8))
    copied = copy_torch_model(TorchClassifier(scripted, input_shape=(1, 8, 8)))
    assert all(p.is_leaf and p.requires_grad for p in copied.module.parameters())
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(copied.logits(x), plain_cnn.logits(x))


def test_copy_refuses_a_black_box(small_train: Dataset) -> None:
    class Box:
        n_classes, input_shape, bounds, n_queries = 10, (64,), (0.0, 1.0), 0

        def reset_queries(self) -> None: ...

        def predict_proba(self, x: object) -> object: ...

    assert isinstance(Box(), Classifier)
    with pytest.raises(UnsupportedModelError, match="trains a torch network"):
        copy_torch_model(Box())  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "value"), [("8/255", 8 / 255), ("0.03", 0.03), ("1", 1.0)])
def test_budgets_parse_as_fractions_or_decimals(text: str, value: float) -> None:
    assert parse_fraction(text) == pytest.approx(value)


def test_a_bad_value_for_a_number_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must be a number"):
        build_hardener("dp-sgd", {"epochs": "2.5"})
