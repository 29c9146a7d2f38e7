"""Shared pieces of the training defenses: data as tensors, the epoch loop, checkpoints.

Adversarial training, TRADES, fast AT and distillation differ only in the loss of one
batch; the loop around it (seeded shuffling, optimiser, per-epoch validation, keeping
the best checkpoint, early stopping, progress events) lives here once. Data stays in
tensors on the model's device for the whole run: no DataLoader, no numpy round trip.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from bastion.data import Dataset, split_dataset
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.models.torch import TorchClassifier
from bastion.progress import ProgressSink, emit

__all__ = ["Batches", "EpochEnd", "EpochScore", "Optimizer", "accuracy", "fit", "labelled",
           "make_optimizer", "reset_parameters", "train_val"]

Optimizer = Literal["sgd", "adam"]
# The loss of one batch: (net, x, y, epoch progress in [0, epochs)) -> scalar to minimise.
BatchLoss = Callable[[TorchClassifier, torch.Tensor, torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class EpochScore:
    """What validation says after an epoch: a log row, the score to maximise for
    checkpointing (None: keep the last weights), to stop now, the reason why, and when
    the score is an accuracy, the number of validation samples behind it (its noise)."""

    row: dict[str, float]
    score: float | None = None
    stop: str | None = None
    n_scored: int | None = None


@dataclass(frozen=True)
class _Checkpoint:
    score: float
    epoch: int
    state: dict[str, torch.Tensor]


class _Checkpoints:
    """The weights worth finishing with, under the one-standard-error rule: the latest
    epoch whose validation accuracy lies within one standard error of the best.

    An earlier epoch wins only when the later ones fell clearly below it (robust
    overfitting, Rice et al. 2020), not when a small validation split scores it a
    sample or two higher by chance: training on usually still helps, and restoring
    an under-trained epoch on noise cost more robustness than it saved. Only epochs
    that no later epoch beats can ever be chosen, so those are all it keeps.
    """

    def __init__(self) -> None:
        self._kept: list[_Checkpoint] = []  # epochs ascending, scores non-increasing
        self._n_scored: int | None = None

    def add(self, score: float, epoch: int, module: torch.nn.Module,
            n_scored: int | None) -> None:
        while self._kept and self._kept[-1].score < score:
            self._kept.pop()
        self._kept.append(_Checkpoint(score, epoch, copy.deepcopy(module.state_dict())))
        self._n_scored = n_scored

    @property
    def best(self) -> _Checkpoint | None:
        return self._kept[0] if self._kept else None

    @property
    def last(self) -> _Checkpoint | None:
        """The latest epoch scored (always kept: no later epoch can beat it yet)."""
        return self._kept[-1] if self._kept else None

    def choice(self) -> _Checkpoint | None:
        """The latest kept epoch within one standard error of the best score (the best
        itself when the score has no sample count)."""
        best = self.best
        if best is None:
            return None
        p = min(max(best.score, 0.0), 1.0)
        n = self._n_scored
        tolerance = (p * (1 - p) / n) ** 0.5 if n else 0.0
        return next(c for c in reversed(self._kept) if c.score >= best.score - tolerance)


EpochEnd = Callable[[int, float], EpochScore]


@dataclass(frozen=True)
class Batches:
    """Inputs and labels as tensors on the model's device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


def labelled(net: TorchClassifier, data: Dataset, what: str) -> Batches:
    """``data`` as tensors, refusing what the model cannot be trained or judged on."""
    if data.y is None:
        raise InvalidDataError(f"the {what} data has no labels; training needs them")
    if len(data) == 0:
        raise InvalidDataError(f"the {what} data is empty")
    if data.sample_shape != tuple(net.input_shape):
        raise ShapeMismatchError(
            f"the {what} data has samples of shape {data.sample_shape} but the model takes "
            f"{tuple(net.input_shape)}; pass --input-shape or reshape the data"
        )
    x = np.asarray(data.x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InvalidDataError(f"the {what} data contains NaN or inf; clean it first")
    lo, hi = net.bounds
    if x.min() < lo - 1e-6 or x.max() > hi + 1e-6:
        raise InvalidDataError(
            f"the {what} data falls outside the model's bounds [{lo}, {hi}]; rescale it or "
            "pass --bounds"
        )
    y = np.asarray(data.y)
    if y.min() < 0 or y.max() >= net.n_classes:
        raise InvalidDataError(f"{what} labels must lie in [0, {net.n_classes - 1}]")
    return Batches(torch.as_tensor(x, device=net.device).clamp(lo, hi),
                   torch.as_tensor(y.astype(np.int64), device=net.device))


def train_val(
    net: TorchClassifier, train: Dataset, val: Dataset | None, *, val_fraction: float,
    seed: int,
) -> tuple[Batches, Batches]:
    """Training and validation tensors; without ``val``, a seeded stratified hold-out."""
    if val is None:
        train, val = split_dataset(train, test_fraction=val_fraction, seed=seed)
    return labelled(net, train, "training"), labelled(net, val, "validation")


def make_optimizer(
    params: list[torch.nn.Parameter], kind: Optimizer, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """SGD with momentum 0.9 (the papers' choice) or Adam."""
    if not lr > 0:
        raise ConfigError(f"lr={lr} must be positive")
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be sgd or adam; got {kind!r}")


def reset_parameters(module: torch.nn.Module, seed: int) -> None:
    """Re-initialise every layer that can (seeded), for training from scratch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in module.modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()


def fit(
    net: TorchClassifier, data: Batches, *, loss: BatchLoss, epochs: int, batch_size: int,
    optimizer: torch.optim.Optimizer, generator: torch.Generator, on_epoch: EpochEnd,
    patience: int | None = None, progress: ProgressSink | None = None, task: str = "training",
) -> tuple[list[dict[str, float]], list[str]]:
    """Train ``net.module`` in place for up to ``epochs``; returns the log and notes.

    After every epoch ``on_epoch`` scores the model; at the end the weights of the
    latest epoch within one standard error of the best score are restored
    (:class:`_Checkpoints`), and training stops after ``patience`` epochs without a new
    best.
    """
    if epochs < 1 or batch_size < 1:
        raise ConfigError("epochs and batch_size must be at least 1")
    module = net.module
    log: list[dict[str, float]] = []
    notes: list[str] = []
    checkpoints = _Checkpoints()
    n = len(data)
    for epoch in range(epochs):
        emit(progress, task, epoch, epochs)
        order = torch.randperm(n, generator=generator).to(data.x.device)
        total, seen = torch.zeros((), device=data.x.device), 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            module.train()
            value = loss(net, data.x[idx], data.y[idx], epoch + start / n)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(value)
            optimizer.step()
            total += value.detach() * len(idx)
            seen += len(idx)
        module.eval()
        mean_loss = float(total) / seen
        scored = on_epoch(epoch, mean_loss)
        log.append({"epoch": float(epoch + 1), "loss": mean_loss, **scored.row})
        if scored.score is not None:
            checkpoints.add(scored.score, epoch, module, scored.n_scored)
        if scored.stop is not None:
            notes.append(scored.stop)
            break
        best = checkpoints.best
        if best is not None and patience is not None and epoch - best.epoch >= patience:
            notes.append(f"stopped early after epoch {epoch + 1}: validation score did not "
                         f"improve for {patience} epochs")
            break
    emit(progress, task, epochs, epochs)
    module.eval()
    chosen, last = checkpoints.choice(), checkpoints.last
    if chosen is not None and last is not None and chosen.epoch != len(log) - 1:
        module.load_state_dict(chosen.state)
        notes.append(f"restored the checkpoint of epoch {chosen.epoch + 1} of {len(log)} "
                     f"(validation score {chosen.score:.3f}; the last epoch's {last.score:.3f} "
                     "was further below the best than its noise)")
    return log, notes


@torch.no_grad()
def accuracy(net: TorchClassifier, data: Batches, batch_size: int = 512) -> float:
    """Clean accuracy on ``data``."""
    right = 0
    for start in range(0, len(data), batch_size):
        logits = net.logits(data.x[start:start + batch_size])
        right += int((logits.argmax(1) == data.y[start:start + batch_size]).sum())
    return right / max(len(data), 1)
