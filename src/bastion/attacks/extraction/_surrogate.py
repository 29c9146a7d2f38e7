"""The attacker's copy: a torch model trained on the target's answers.

Knockoff Nets (Orekondy et al., 2019) train on the full probability vectors the target
returns (soft labels), which carry more information per query than the top label that
Papernot et al. (2017) used; ``soft_labels=False`` gives the latter. The default
architecture is a two-hidden-layer MLP over flattened inputs; any
``factory(input_shape, n_classes) -> nn.Module`` can replace it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from bastion.models.torch import TorchClassifier

__all__ = ["SurrogateFactory", "mlp_surrogate", "train_surrogate"]

SurrogateFactory = Callable[[tuple[int, ...], int], "torch.nn.Module"]


def mlp_surrogate(input_shape: tuple[int, ...], n_classes: int) -> torch.nn.Module:
    """Flatten → 128 → 128 → classes, ReLU: enough capacity for tabular and small images."""
    from torch import nn

    n_in = int(np.prod(input_shape))
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 128), nn.ReLU(), nn.Linear(128, 128),
                         nn.ReLU(), nn.Linear(128, n_classes))


def train_surrogate(
    x: np.ndarray,
    probs: np.ndarray,
    *,
    input_shape: tuple[int, ...],
    bounds: tuple[float, float],
    factory: SurrogateFactory = mlp_surrogate,
    soft_labels: bool = True,
    epochs: int = 40,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> TorchClassifier:
    """Fit a fresh surrogate on ``(x, target probabilities)``; seeded end to end."""
    import torch

    from bastion.models.torch import TorchClassifier, one_thread

    gen = torch.Generator().manual_seed(seed)
    n_classes = probs.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # parameter initialisation, isolated from global state
        net = factory(input_shape, n_classes)
    xt = torch.as_tensor(x, dtype=torch.float32)
    target = torch.as_tensor(probs, dtype=torch.float32)
    if not soft_labels:
        target = torch.nn.functional.one_hot(target.argmax(1), n_classes).float()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    with one_thread():
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=gen)
            for start in range(0, len(xt), batch_size):
                idx = order[start : start + batch_size]
                opt.zero_grad()
                logp = torch.log_softmax(net(xt[idx]), dim=1)
                loss = -(target[idx] * logp).sum(dim=1).mean()
                torch.autograd.backward(loss)
                opt.step()
    return TorchClassifier(net, input_shape=input_shape, n_classes=n_classes, bounds=bounds)
