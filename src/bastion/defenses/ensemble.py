"""Ensembles that know when they do not know (Lakshminarayanan, Pritzel & Blundell, 2017).

The ensemble predicts the mean of its members' probabilities. Inputs far from the
training data, noisy inputs and adversarial examples crafted against one model tend to
split the members, so an uncertainty score flags them:

* ``entropy`` — predictive entropy ``H(mean_m p_m)`` in nats, high when the averaged
  prediction is flat (members unsure or pulling apart);
* ``disagreement`` — the share of members whose vote differs from the ensemble's class.

:meth:`Ensemble.predict` abstains (returns :data:`ABSTAIN`) above ``threshold``;
:meth:`Ensemble.calibrated` sets the threshold so that a chosen share of clean inputs
abstain. This is a detector as much as a defense: an attacker who knows the ensemble
can lower the uncertainty too, so robust accuracy is measured by attacking the ensemble
itself (its ``logits`` are the log of the averaged probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from bastion.defenses._base import HARDENERS, HardenResult, copy_torch_model, hardener_name
from bastion.defenses.smoothing import ABSTAIN
from bastion.errors import ConfigError, ShapeMismatchError
from bastion.typing import Bounds, Classifier, Differentiable

if TYPE_CHECKING:
    from bastion.data import Dataset
    from bastion.defenses._training import Batches
    from bastion.models.torch import TorchClassifier
    from bastion.progress import ProgressSink

__all__ = ["DeepEnsemble", "Ensemble", "EnsembleDifferentiable", "Uncertainty", "ensemble"]

Uncertainty = Literal["entropy", "disagreement"]


class Ensemble:
    """Members averaged in probability, with an uncertainty score and an abstain rule.

    Every prediction queries every member, so ``n_queries`` is the members' total.
    """

    def __init__(self, members: Sequence[Classifier], *, uncertainty: Uncertainty = "entropy",
                 threshold: float | None = None) -> None:
        if len(members) < 2:
            raise ConfigError("an ensemble needs at least two members")
        if uncertainty not in ("entropy", "disagreement"):
            raise ConfigError(f"uncertainty must be entropy or disagreement; got {uncertainty!r}")
        first = members[0]
        for other in members[1:]:
            if (other.n_classes, tuple(other.input_shape), tuple(other.bounds)) != (
                    first.n_classes, tuple(first.input_shape), tuple(first.bounds)):
                raise ShapeMismatchError(
                    "ensemble members must share classes, input shape and bounds; got "
                    f"{first.n_classes}/{tuple(first.input_shape)}/{first.bounds} and "
                    f"{other.n_classes}/{tuple(other.input_shape)}/{other.bounds}"
                )
        self.members = tuple(members)
        self.uncertainty_kind: Uncertainty = uncertainty
        self.threshold = threshold

    @property
    def n_classes(self) -> int:
        return self.members[0].n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.members[0].input_shape)

    @property
    def bounds(self) -> Bounds:
        return self.members[0].bounds

    @property
    def n_queries(self) -> int:
        return sum(m.n_queries for m in self.members)

    def reset_queries(self) -> None:
        for m in self.members:
            m.reset_queries()

    def member_proba(self, x: np.ndarray) -> np.ndarray:
        """Every member's probabilities, shape ``(n_members, n, n_classes)``."""
        return np.stack([np.asarray(m.predict_proba(x), dtype=np.float64)
                         for m in self.members])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        mean: np.ndarray = self.member_proba(x).mean(0)
        return mean

    def uncertainty(self, x: np.ndarray) -> np.ndarray:
        """The chosen uncertainty score per input (higher: less sure)."""
        return _score(self.member_proba(x), self.uncertainty_kind)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's class, or ``ABSTAIN`` where the uncertainty exceeds ``threshold``."""
        probs = self.member_proba(x)
        out: np.ndarray = probs.mean(0).argmax(1).astype(np.int64)
        if self.threshold is not None:
            out[_score(probs, self.uncertainty_kind) > self.threshold] = ABSTAIN
        return out

    def calibrated(self, x_clean: np.ndarray, *, abstain_rate: float = 0.05) -> Ensemble:
        """A copy whose threshold makes about ``abstain_rate`` of ``x_clean`` abstain."""
        if not 0 <= abstain_rate < 1:
            raise ConfigError(f"abstain_rate must lie in [0, 1); got {abstain_rate}")
        scores = self.uncertainty(x_clean)
        threshold = float(np.quantile(scores, 1 - abstain_rate, method="higher"))
        return ensemble(self.members, uncertainty=self.uncertainty_kind, threshold=threshold)


class EnsembleDifferentiable(Ensemble):
    """Also ``Differentiable`` (every member is): logits are the log of the mean
    probabilities, so a gradient attack targets the ensemble's actual decision.

    ``logit_mean=True`` gives the adaptive attacker's view instead: the members' raw
    logits averaged. Averaged probabilities saturate where one member is confident and
    its gradient vanishes; averaged logits do not (Tramer et al., NeurIPS 2020).
    """

    def __init__(self, members: Sequence[Classifier], *, uncertainty: Uncertainty = "entropy",
                 threshold: float | None = None, logit_mean: bool = False) -> None:
        super().__init__(members, uncertainty=uncertainty, threshold=threshold)
        self._white = [m for m in self.members if isinstance(m, Differentiable)]
        assert len(self._white) == len(self.members)  # ensemble() only builds this for such
        self.logit_mean = logit_mean

    @property
    def device(self) -> torch.device:
        return self._white[0].device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.logit_mean:
            return torch.stack([m.logits(x) for m in self._white]).mean(0)
        logp = torch.stack([F.log_softmax(m.logits(x), dim=1) for m in self._white])
        return torch.logsumexp(logp, dim=0) - math.log(len(self._white))


def ensemble(members: Sequence[Classifier], *, uncertainty: Uncertainty = "entropy",
             threshold: float | None = None) -> Ensemble:
    """An ensemble of ``members``; white-box when every member is."""
    kind = (EnsembleDifferentiable if all(isinstance(m, Differentiable) for m in members)
            else Ensemble)
    return kind(members, uncertainty=uncertainty, threshold=threshold)


def _score(member_probs: np.ndarray, kind: Uncertainty) -> np.ndarray:
    mean = member_probs.mean(0)
    if kind == "entropy":
        entropy: np.ndarray = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(1)
        return entropy
    votes = member_probs.argmax(2)  # (members, n)
    disagree: np.ndarray = (votes != mean.argmax(1)[None]).mean(0)
    return disagree


@HARDENERS.register("ensemble")
@dataclass(frozen=True, kw_only=True)
class DeepEnsemble:
    """Train ``n_members`` copies of the architecture from independent seeded starts.

    Members are re-initialised and trained normally (Lakshminarayanan et al. train from
    random initialisations; their adversarial-training term is left to ``pgd-at``); the
    abstain threshold is set on the validation data so that ``abstain_rate`` of it abstains.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    # Averaged softmax saturates: on digits PGD overstated robust accuracy (0.33 vs 0.27
    # under Square at eps 0.15), so the evaluation adds the logit-mean view and Square.
    masks_gradients: ClassVar[bool] = True
    n_members: int = 5
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    uncertainty: Uncertainty = "entropy"
    abstain_rate: float = 0.05
    val_fraction: float = 0.1

    def apply(
        self, model: Classifier, train: Dataset, *, val: Dataset | None = None, seed: int = 0,
        progress: ProgressSink | None = None,
    ) -> HardenResult:
        """Train the members (the user's model is untouched) and calibrate the threshold."""
        from bastion.defenses._training import train_val

        if self.n_members < 2:
            raise ConfigError(f"ensemble needs n_members >= 2; got {self.n_members}")
        name = hardener_name(type(self))
        first = copy_torch_model(model)
        data, held_out = train_val(first, train, val, val_fraction=self.val_fraction, seed=seed)
        members, log = [], []
        for i in range(self.n_members):
            net = first if i == 0 else copy_torch_model(model)
            log.extend(self._train_member(net, data, held_out, seed + i, f"{name} member {i + 1}",
                                          progress))
            members.append(net)
        held, labels = held_out.x.cpu().numpy(), held_out.y.cpu().numpy()
        result = ensemble(members, uncertainty=self.uncertainty).calibrated(
            held, abstain_rate=self.abstain_rate)
        assert result.threshold is not None  # calibrated() always sets it
        return HardenResult(
            model=result, method=name, masks_gradients=True,
            members=tuple(m.module for m in members), log=tuple(log),
            adaptive=(("logit-mean", EnsembleDifferentiable(members, logit_mean=True)),),
            wrapper={"ensemble": name, "n_members": self.n_members,
                     "uncertainty": self.uncertainty, "threshold": result.threshold},
            metrics={"threshold": result.threshold,
                     "validation_abstain_rate": float(np.mean(result.predict(held) == ABSTAIN)),
                     "validation_accuracy": float(np.mean(
                         result.predict_proba(held).argmax(1) == labels))},
        )

    def _train_member(self, net: TorchClassifier, data: Batches, held_out: Batches, seed: int,
                      task: str, progress: ProgressSink | None) -> list[dict[str, float]]:
        """Re-initialise ``net`` from ``seed`` and train it in place on clean data."""
        from bastion.defenses._training import (
            EpochScore,
            accuracy,
            fit,
            make_optimizer,
            reset_parameters,
        )

        reset_parameters(net.module, seed)

        def loss(n: TorchClassifier, x: torch.Tensor, y: torch.Tensor, t: float) -> torch.Tensor:
            return F.cross_entropy(n.logits(x), y)

        def on_epoch(epoch: int, _loss: float) -> EpochScore:
            return EpochScore({"member_seed": float(seed), "accuracy": accuracy(net, held_out)})

        opt = make_optimizer(list(net.module.parameters()), "adam", self.lr, 0.0)
        rows, _ = fit(net, data, loss=loss, epochs=self.epochs, batch_size=self.batch_size,
                      optimizer=opt, generator=torch.Generator().manual_seed(seed),
                      on_epoch=on_epoch, progress=progress, task=task)
        return rows
