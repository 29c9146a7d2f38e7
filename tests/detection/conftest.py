"""A small digits classifier shared by the run-time detector tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bastion.data.demo import demo_digits
from bastion.models.torch import TorchClassifier


def digits_classifier(seed: int = 0, n_train: int | None = None) -> tuple[
        TorchClassifier, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An MLP on 8x8 digits (about 96 % test accuracy) and its seeded train/test split.

    With ``n_train`` the model sees only the first ``n_train`` training rows; the rest
    stay unseen (held-out reference data for run-time detectors).
    """
    train, test = demo_digits(seed)
    assert train.y is not None and test.y is not None
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.as_tensor(train.x[:n_train]), torch.as_tensor(train.y[:n_train])
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    model = TorchClassifier(net, input_shape=(1, 8, 8), n_classes=10)
    return model, train.x, train.y, test.x, test.y


class Recorder:
    """A model as a black box that remembers what an attacker asked, in order."""

    def __init__(self, model: TorchClassifier) -> None:
        self.model = model
        self.asked: list[np.ndarray] = []

    n_classes = property(lambda self: self.model.n_classes)
    input_shape = property(lambda self: self.model.input_shape)
    bounds = property(lambda self: self.model.bounds)
    n_queries = property(lambda self: self.model.n_queries)

    def reset_queries(self) -> None:
        self.model.reset_queries()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.asked.append(np.array(x))
        return self.model.predict_proba(x)


@pytest.fixture(scope="session")
def digits() -> tuple[TorchClassifier, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return digits_classifier()
