"""Small models for the attack tests: a white-box torch adapter and its black-box view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


class TorchNet:
    """A minimal ``Classifier`` + ``Differentiable`` adapter around an ``nn.Module``."""

    def __init__(self, net: torch.nn.Module, input_shape: tuple[int, ...], n_classes: int,
                 bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        self.net, self._shape, self._k, self._bounds, self._q = net.eval(), input_shape, \
            n_classes, bounds, 0

    n_classes = property(lambda self: self._k)
    input_shape = property(lambda self: self._shape)
    bounds = property(lambda self: self._bounds)
    n_queries = property(lambda self: self._q)
    device = property(lambda self: torch.device("cpu"))

    def reset_queries(self) -> None:
        self._q = 0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self._q += len(x)
        with torch.no_grad():
            return torch.softmax(self.net(torch.as_tensor(x, dtype=torch.float32)), 1).numpy()


class BlackBox:
    """Only the ``Classifier`` half of a model: no gradients."""

    def __init__(self, inner: TorchNet) -> None:
        self._inner = inner

    n_classes = property(lambda self: self._inner.n_classes)
    input_shape = property(lambda self: self._inner.input_shape)
    bounds = property(lambda self: self._inner.bounds)
    n_queries = property(lambda self: self._inner.n_queries)

    def reset_queries(self) -> None:
        self._inner.reset_queries()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._inner.predict_proba(x)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    x = torch.as_tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    return x, torch.as_tensor(d.target, dtype=torch.long)


def train_cnn(seed: int = 0, epochs: int = 8) -> tuple[TorchNet, torch.Tensor, torch.Tensor]:
    """A small CNN trained on the digits (first 1400 to train); returns the held-out rest."""
    torch.manual_seed(seed)
    x, y = _digits()
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(1400, generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return TorchNet(net, (1, 8, 8), 10), x[1400:], y[1400:]


@pytest.fixture(scope="session")
def digits_cnn() -> tuple[TorchNet, torch.Tensor, torch.Tensor]:
    return train_cnn()


@pytest.fixture()
def tiny() -> tuple[TorchNet, torch.Tensor, torch.Tensor]:
    """An untrained linear model on 8x8 inputs with its own predictions as labels."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x).argmax(1)
    return TorchNet(net, (1, 8, 8), 10), x, y
