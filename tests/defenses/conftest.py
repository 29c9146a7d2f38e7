"""Fixtures for the training-defense tests: the demo digits data and a trained demo CNN."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from bastion.data import Dataset
from bastion.data.demo import demo_digits
from bastion.demo import digits_cnn
from bastion.models.torch import TorchClassifier


def train_digits_cnn(train: Dataset, *, seed: int = 0, epochs: int = 6) -> TorchClassifier:
    """The demo architecture trained normally (no defense) on ``train``."""
    assert train.y is not None
    torch.manual_seed(seed)
    module = digits_cnn()
    x = torch.as_tensor(train.x, dtype=torch.float32)
    y = torch.as_tensor(train.y, dtype=torch.long)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(x[idx]), y[idx]).backward()
            opt.step()
    return TorchClassifier(module, input_shape=train.sample_shape)


@pytest.fixture(scope="session")
def digits() -> tuple[Dataset, Dataset]:
    """The demo digits split (1x8x8 images in [0, 1])."""
    return demo_digits(seed=0)


@pytest.fixture(scope="session")
def small_train(digits: tuple[Dataset, Dataset]) -> Dataset:
    """600 training digits: enough to learn, small enough for fast tests."""
    train = digits[0]
    assert train.y is not None
    return replace(train, x=train.x[:600], y=train.y[:600])


@pytest.fixture(scope="session")
def plain_cnn(digits: tuple[Dataset, Dataset]) -> TorchClassifier:
    """The demo CNN trained without any defense."""
    return train_digits_cnn(digits[0])
