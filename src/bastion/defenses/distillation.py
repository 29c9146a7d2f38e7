"""Defensive distillation (Papernot, McDaniel, Wu, Jha & Swami, IEEE S&P 2016).

A teacher is trained from scratch with its softmax at temperature ``T`` on the hard
labels; its probabilities at ``T`` on the training set become soft labels; a student
of the same architecture is trained from scratch at ``T`` on them and deployed at
``T = 1``. At ``T = 1`` the student's softmax saturates, so the cross-entropy gradient
that FGSM/PGD follow nearly vanishes: the defense **masks gradients** rather than
removing adversarial examples (Carlini & Wagner 2016 broke it). The result therefore
carries an adaptive view for the evaluation: the same network with its logits divided
by ``T``, which restores useful gradients without changing any prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from bastion.defenses._base import HARDENERS, HardenResult, copy_torch_model, hardener_name
from bastion.defenses._training import (
    Batches,
    EpochScore,
    Optimizer,
    accuracy,
    fit,
    make_optimizer,
    reset_parameters,
    train_val,
)
from bastion.errors import ConfigError
from bastion.models._base import Wrapper
from bastion.models.torch import TorchClassifier
from bastion.typing import Classifier, Differentiable

if TYPE_CHECKING:
    from bastion.data import Dataset
    from bastion.progress import ProgressSink

__all__ = ["DefensiveDistillation", "TemperatureScaled"]


class TemperatureScaled(Wrapper):
    """A white-box view of ``model`` with logits divided by ``temperature``.

    Predictions are unchanged (argmax is scale-invariant); gradients through the softmax
    are no longer saturated. Carlini & Wagner's counter to defensive distillation.
    """

    def __init__(self, model: TorchClassifier, temperature: float) -> None:
        self.model = self.wrapped = model
        self.temperature = temperature

    @property
    def device(self) -> torch.device:
        return self.model.device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.logits(x) / self.temperature

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = np.log(np.clip(self.model.predict_proba(x), 1e-300, None)) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probs: np.ndarray = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs


@HARDENERS.register("distillation")
@dataclass(frozen=True, kw_only=True)
class DefensiveDistillation:
    """Teacher and student trained at ``temperature``, the student deployed at 1."""

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    masks_gradients: ClassVar[bool] = True
    temperature: float = 20.0
    epochs: int = 10
    batch_size: int = 128
    optimizer: Optimizer = "adam"
    lr: float = 3e-3  # logits must grow T-fold to be confident at T: a faster rate helps
    val_fraction: float = 0.1

    def apply(
        self, model: Classifier, train: Dataset, *, val: Dataset | None = None, seed: int = 0,
        progress: ProgressSink | None = None,
    ) -> HardenResult:
        """Train teacher then student (fresh copies of ``model``'s architecture)."""
        if not self.temperature >= 1:
            raise ConfigError(f"distillation temperature must be >= 1; got {self.temperature}")
        name = hardener_name(type(self))
        teacher = copy_torch_model(model)
        data, held_out = train_val(teacher, train, val, val_fraction=self.val_fraction,
                                   seed=seed)
        t = self.temperature
        reset_parameters(teacher.module, seed)
        teacher_log, _ = self._train(teacher, data, held_out, lambda z, i: F.cross_entropy(
            z / t, data.y[i]), seed, progress, f"{name} teacher")
        with torch.no_grad():
            soft = torch.cat([F.softmax(teacher.logits(chunk) / t, dim=1)
                              for chunk in torch.split(data.x, 512)])
        student = copy_torch_model(teacher)
        reset_parameters(student.module, seed + 1)
        student_log, notes = self._train(student, data, held_out, lambda z, i: F.cross_entropy(
            z / t, soft[i]), seed + 1, progress, f"{name} student")
        log = [{**row, "stage": 0.0} for row in teacher_log]
        log += [{**row, "stage": 1.0} for row in student_log]
        return HardenResult(
            model=student, method=name, masks_gradients=True, module=student.module,
            adaptive=((f"logits / T (T={t:g}, Carlini & Wagner 2016)",
                       TemperatureScaled(student, t)),),
            log=tuple(log), metrics={"temperature": t,
                                     "teacher_validation_accuracy": accuracy(teacher, held_out),
                                     "validation_clean_accuracy": accuracy(student, held_out)},
            notes=("Stage 0 rows of the log are the teacher's, stage 1 the student's; the "
                   "student is deployed at temperature 1", *notes),
        )

    def _train(
        self, net: TorchClassifier, data: Batches, held_out: Batches,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], seed: int,
        progress: ProgressSink | None, task: str,
    ) -> tuple[list[dict[str, float]], list[str]]:
        """Train ``net`` on ``loss(logits, batch indices)``, keeping the best validation epoch."""
        # ``fit`` hands out batches, not their indices; carry the index as the label.
        indexed = Batches(data.x, torch.arange(len(data), device=data.x.device))
        opt = make_optimizer(list(net.module.parameters()), self.optimizer, self.lr, 0.0)

        def on_epoch(_epoch: int, _loss: float) -> EpochScore:
            acc = accuracy(net, held_out)
            return EpochScore({"clean_accuracy": acc}, acc, n_scored=len(held_out))

        return fit(net, indexed, loss=lambda n, x, i, _t: loss(n.logits(x), i),
                   epochs=self.epochs, batch_size=self.batch_size, optimizer=opt,
                   generator=torch.Generator().manual_seed(seed), on_epoch=on_epoch,
                   progress=progress, task=task)
