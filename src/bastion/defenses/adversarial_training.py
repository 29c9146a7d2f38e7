"""Adversarial training: PGD-AT (Madry et al. 2018), TRADES (Zhang et al. 2019) and fast
FGSM-RS training (Wong, Rice & Kolter 2020).

All three solve ``min_θ E[max_{‖δ‖≤ε} L(θ, x + δ, y)]`` with a different inner step and
outer loss, share one loop (:mod:`bastion.defenses._training`) and one schedule: ε grows
linearly from 0 over ``warmup_epochs`` (large budgets from the first step stall training),
and after every epoch the model is scored by PGD robust accuracy on a validation split;
the latest epoch within one standard error of the best is what training returns (robust
overfitting, Rice et al. 2020, without restoring an earlier epoch on validation noise),
with optional early stopping after ``patience`` epochs without improvement.

The inner maximisation is written here, not taken from the attacks registry: the
registry's PGD stops each sample as soon as it is misclassified and re-judges through
the black-box view, which is right for *measuring* robustness but wrong for training,
where Madry et al. maximise the loss for the full number of steps on the whole batch.
Validation uses the registry's PGD and FGSM, which measure exactly what they should.

Fast AT is flagged for catastrophic overfitting (Wong et al. §5): when its FGSM-trained
model keeps FGSM accuracy but PGD accuracy collapses on the validation batch (their gap
exceeds ``overfit_gap``), training stops and the best checkpoint is restored.

The attack steps are most of the cost (``steps`` forward and backward passes per batch
against one for the weight update), so they may run in bfloat16 autocast
(``attack_precision``): an L-inf step uses only the sign of the input gradient and an L2
step only its direction, which bf16 keeps, while the projection onto the ε-ball and the
bounds stays exact in float32. The weight update, the weights, the optimiser state and
every validation run in float32. Image networks also train on a channels-last copy of
their weights (``channels_last``): the same arithmetic in a layout CPU and GPU
convolution kernels run faster; the returned network is contiguous again.
"""

from __future__ import annotations

import platform
from abc import ABC, abstractmethod
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

import torch
import torch.nn.functional as F

from bastion.attacks._ops import Norm, project, random_in_ball, steepest_step
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
from bastion.models.torch import TorchClassifier
from bastion.typing import Classifier, Differentiable

if TYPE_CHECKING:
    from bastion.data import Dataset
    from bastion.progress import ProgressSink

__all__ = ["TRADES", "AttackPrecision", "FastAdversarialTraining", "PGDAdversarialTraining",
           "Precision", "bf16_is_fast", "pgd_inner"]

Precision = Literal["fp32", "bf16"]
AttackPrecision = Literal["auto", "fp32", "bf16"]


def bf16_is_fast(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 convolutions and matmuls natively, hence faster than
    fp32: a GPU of compute capability 8.0 or later (Ampere), an x86 CPU with AVX512-BF16 or
    AMX, an ARM CPU with BF16. (Older GPUs and plain AVX-512 emulate bf16: no gain.)"""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    if platform.machine().lower() in ("arm64", "aarch64"):
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return _cpu_has("_is_avx512_bf16_supported") or _cpu_has("_is_amx_tile_supported")


def _cpu_has(probe: str) -> bool:
    """One of torch's private CPU feature probes; False on a torch too old to have it."""
    found = getattr(torch.cpu, probe, None)
    return callable(found) and bool(found())


def _autocast(net: TorchClassifier, precision: Precision) -> torch.autocast:
    """bf16 autocast on the model's device, or a context that changes nothing for fp32."""
    return torch.autocast(net.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _set_memory_format(module: torch.nn.Module, layout: torch.memory_format) -> None:
    """Lay out the 4-D weights (convolution kernels) of ``module`` in place."""
    with torch.no_grad():
        for tensor in chain(module.parameters(), module.buffers()):
            if tensor.ndim == 4:
                tensor.data = tensor.data.contiguous(memory_format=layout)


def _try_channels_last(net: TorchClassifier, probe: torch.Tensor) -> bool:
    """Put the (copied) network's kernels in channels-last layout; False, leaving the layout
    as it was, for non-image inputs, networks without 4-D kernels and forwards that need
    contiguous activations (``x.view(n, -1)`` after a convolution)."""
    if len(net.input_shape) != 3 or not any(p.ndim == 4 for p in net.module.parameters()):
        return False
    _set_memory_format(net.module, torch.channels_last)
    try:
        with torch.no_grad():
            net.logits(probe)
    except RuntimeError:
        _set_memory_format(net.module, torch.contiguous_format)
        return False
    return True


def pgd_inner(
    net: TorchClassifier, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: Norm,
    steps: int, step_size: float, generator: torch.Generator, precision: Precision = "fp32",
) -> torch.Tensor:
    """Madry et al.'s inner maximisation: ``steps`` signed-gradient ascent steps on the
    cross-entropy from a uniform random start, projected after each; no early stop.
    ``precision="bf16"`` runs the forward and backward passes in bf16 autocast; the
    start, the step and the projection stay in ``x``'s dtype."""
    lo, hi = net.bounds
    if eps == 0:
        return x
    x_adv = project(x + random_in_ball(x, eps, norm, generator), x, eps, norm, lo, hi)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with _autocast(net, precision):
            logits = net.logits(x_adv)
        loss = F.cross_entropy(logits, y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = project(x_adv.detach() + step_size * steepest_step(grad, norm), x, eps, norm,
                        lo, hi)
    return x_adv.detach()


@dataclass(frozen=True, kw_only=True)
class _AdversarialTraining(ABC):
    """What every adversarial-training method shares; subclasses write :meth:`batch_loss`.

    ``eps`` is the budget in input units (``8/255`` on ``[0, 1]`` images), ``step_size``
    defaults to ``2.5 * eps / steps`` (Madry et al.). ``from_scratch`` re-initialises the
    network first; otherwise training starts from the given weights.

    ``attack_precision`` is what the attack steps compute in: ``bf16`` (autocast), ``fp32``,
    or ``auto``, bf16 where the device runs it natively (:func:`bf16_is_fast`) and the
    model is float32. ``channels_last`` trains image networks in that layout.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    masks_gradients: ClassVar[bool] = False
    eps: float = 8 / 255
    norm: Norm = "linf"
    steps: int = 10
    step_size: float | None = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_epochs: float = 2.0
    patience: int | None = None
    val_fraction: float = 0.1
    n_val: int = 512
    val_steps: int = 10
    from_scratch: bool = False
    attack_precision: AttackPrecision = "auto"
    channels_last: bool = True

    @abstractmethod
    def batch_loss(self, net: TorchClassifier, x: torch.Tensor, y: torch.Tensor, eps: float,
                   generator: torch.Generator, precision: Precision) -> torch.Tensor:
        """The outer loss of one batch at budget ``eps``, its attack steps computed in
        ``precision``; ends with the module in train mode."""

    def precision_for(self, net: TorchClassifier) -> Precision:
        """What the attack steps compute in on ``net``'s device, ``auto`` resolved."""
        if self.attack_precision == "fp32":
            return "fp32"
        if net.dtype != torch.float32:
            if self.attack_precision == "bf16":
                raise ConfigError(f"attack-precision=bf16 needs a float32 model; this one "
                                  f"computes in {net.dtype}; use fp32 or auto")
            return "fp32"
        return "bf16" if self.attack_precision == "bf16" or bf16_is_fast(net.device) else "fp32"

    def check_overfitting(self, fgsm_acc: float, pgd_acc: float) -> str | None:
        """A reason to stop when the epoch's model shows catastrophic overfitting."""
        return None

    def apply(
        self, model: Classifier, train: Dataset, *, val: Dataset | None = None, seed: int = 0,
        progress: ProgressSink | None = None,
    ) -> HardenResult:
        """Adversarially train a deep copy of ``model``; the user's model is untouched."""
        self._validate()
        name = hardener_name(type(self))
        net = copy_torch_model(model)
        if self.from_scratch:
            reset_parameters(net.module, seed)
        data, held_out = train_val(net, train, val, val_fraction=self.val_fraction, seed=seed)
        held_out = Batches(held_out.x[: self.n_val], held_out.y[: self.n_val])
        precision = self.precision_for(net)
        relaid = self.channels_last and _try_channels_last(net, data.x[:2])
        shuffle = torch.Generator().manual_seed(seed)
        noise = torch.Generator(device=net.device).manual_seed(seed + 1)
        check = torch.Generator().manual_seed(seed + 2)
        opt = make_optimizer(list(net.module.parameters()), self.optimizer, self.lr,
                             self.weight_decay)

        def loss(n: TorchClassifier, x: torch.Tensor, y: torch.Tensor, t: float) -> torch.Tensor:
            return self.batch_loss(n, x, y, self.eps_at(t), noise, precision)

        def on_epoch(epoch: int, _loss: float) -> EpochScore:
            scores = self._validation(net, held_out, check)
            stop = self.check_overfitting(scores["fgsm_accuracy"], scores["robust_accuracy"])
            if stop is not None:
                stop = f"epoch {epoch + 1}: {stop}"
            return EpochScore({**scores, "eps": self.eps_at(epoch + 1.0)},
                              scores["robust_accuracy"], stop, n_scored=len(held_out))

        log, notes = fit(net, data, loss=loss, epochs=self.epochs, batch_size=self.batch_size,
                         optimizer=opt, generator=shuffle, on_epoch=on_epoch,
                         patience=self.patience, progress=progress, task=name)
        if relaid:  # a normal network again: safetensors saves contiguous tensors only
            _set_memory_format(net.module, torch.contiguous_format)
        if precision == "bf16":
            notes.append(f"attack steps ran in bfloat16 autocast (attack-precision="
                         f"{self.attack_precision}); weights, updates and validation in float32")
        final = self._validation(net, held_out, check)
        return HardenResult(
            model=net, method=name, module=net.module, log=tuple(log),
            metrics={"validation_clean_accuracy": final["clean_accuracy"],
                     "validation_robust_accuracy": final["robust_accuracy"],
                     "eps": self.eps, "epochs_run": float(len(log))},
            notes=tuple(notes),
        )

    def eps_at(self, t: float) -> float:
        """The budget after ``t`` epochs: linear warm-up from 0, then ``eps``."""
        if self.warmup_epochs <= 0:
            return self.eps
        return self.eps * min(1.0, t / self.warmup_epochs)

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps

    def _validation(self, net: TorchClassifier, data: Batches,
                    generator: torch.Generator) -> dict[str, float]:
        """Clean, FGSM and PGD accuracy on the validation batch at the full budget."""
        from bastion.attacks.evasion.fgsm import FGSM
        from bastion.attacks.evasion.pgd import PGD

        pgd = PGD(eps=self.eps, norm=self.norm, steps=self.val_steps)(
            net, data.x, data.y, generator=generator)
        fgsm = FGSM(eps=self.eps, norm=self.norm)(net, data.x, data.y, generator=generator)
        return {"clean_accuracy": accuracy(net, data),
                "robust_accuracy": pgd.robust_accuracy, "fgsm_accuracy": fgsm.robust_accuracy}

    def _validate(self) -> None:
        name = hardener_name(type(self))
        if not self.eps > 0:
            raise ConfigError(f"{name} needs eps > 0; got {self.eps}")
        if self.norm not in ("linf", "l2"):
            raise ConfigError(f"{name} norm must be linf or l2; got {self.norm!r}")
        if self.steps < 1 or self.val_steps < 1 or self.n_val < 1:
            raise ConfigError(f"{name} needs steps, val-steps and n-val of at least 1")
        if self.step_size is not None and not self.step_size > 0:
            raise ConfigError(f"{name} step-size must be positive; got {self.step_size}")
        if self.attack_precision not in get_args(AttackPrecision):
            raise ConfigError(f"{name} attack-precision must be auto, fp32 or bf16; got "
                              f"{self.attack_precision!r}")


@HARDENERS.register("pgd-at")
@dataclass(frozen=True, kw_only=True)
class PGDAdversarialTraining(_AdversarialTraining):
    """PGD adversarial training (Madry et al. 2018): cross-entropy on PGD examples only."""

    def batch_loss(self, net: TorchClassifier, x: torch.Tensor, y: torch.Tensor, eps: float,
                   generator: torch.Generator, precision: Precision) -> torch.Tensor:
        net.module.eval()  # craft with fixed batch-norm statistics, then train on the result
        x_adv = pgd_inner(net, x, y, eps=eps, norm=self.norm, steps=self.steps,
                          step_size=self.alpha * eps / self.eps, generator=generator,
                          precision=precision)
        net.module.train()
        return F.cross_entropy(net.logits(x_adv), y)


@HARDENERS.register("trades")
@dataclass(frozen=True, kw_only=True)
class TRADES(_AdversarialTraining):
    """TRADES (Zhang et al. 2019): ``CE(f(x), y) + β · KL(f(x) ‖ f(x'))``, where ``x'``
    maximises the KL term by PGD from ``x + 0.001·N(0, I)``. Larger ``beta`` trades clean
    accuracy for robustness (the paper uses 6)."""

    beta: float = 6.0

    def _validate(self) -> None:
        super()._validate()
        if not self.beta >= 0:
            raise ConfigError(f"trades beta must be >= 0; got {self.beta}")

    def batch_loss(self, net: TorchClassifier, x: torch.Tensor, y: torch.Tensor, eps: float,
                   generator: torch.Generator, precision: Precision) -> torch.Tensor:
        lo, hi = net.bounds
        net.module.eval()
        with torch.no_grad():
            p_clean = F.softmax(net.logits(x), dim=1)
        start = torch.randn(x.shape, generator=generator, device=generator.device)
        x_adv = (x + 0.001 * start.to(x.device, x.dtype)).clamp(lo, hi)
        step = self.alpha * eps / self.eps
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            with _autocast(net, precision):
                logits = net.logits(x_adv)
            kl = F.kl_div(F.log_softmax(logits, dim=1), p_clean, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_adv)
            x_adv = project(x_adv.detach() + step * steepest_step(grad, self.norm), x, eps,
                            self.norm, lo, hi)
        net.module.train()
        logits = net.logits(x)
        robust = F.kl_div(F.log_softmax(net.logits(x_adv.detach()), dim=1),
                          F.softmax(logits, dim=1), reduction="batchmean")
        return F.cross_entropy(logits, y) + self.beta * robust


@HARDENERS.register("fast-at")
@dataclass(frozen=True, kw_only=True)
class FastAdversarialTraining(_AdversarialTraining):
    """Fast adversarial training (Wong et al. 2020): one FGSM step of size ``1.25·eps``
    from a uniform random start. ``steps`` applies to nothing here; ``overfit_gap`` is
    the FGSM-minus-PGD validation accuracy gap that flags catastrophic overfitting."""

    overfit_gap: float = 0.2

    def _validate(self) -> None:
        super()._validate()
        if not 0 <= self.overfit_gap <= 1:
            raise ConfigError(f"fast-at overfit-gap must lie in [0, 1]; got {self.overfit_gap}")

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 1.25 * self.eps

    def batch_loss(self, net: TorchClassifier, x: torch.Tensor, y: torch.Tensor, eps: float,
                   generator: torch.Generator, precision: Precision) -> torch.Tensor:
        net.module.eval()
        x_adv = pgd_inner(net, x, y, eps=eps, norm=self.norm, steps=1,
                          step_size=self.alpha * eps / self.eps, generator=generator,
                          precision=precision)
        net.module.train()
        return F.cross_entropy(net.logits(x_adv), y)

    def check_overfitting(self, fgsm_acc: float, pgd_acc: float) -> str | None:
        if fgsm_acc - pgd_acc <= self.overfit_gap:
            return None
        return (f"catastrophic overfitting: FGSM accuracy {fgsm_acc:.0%} but PGD accuracy "
                f"{pgd_acc:.0%} on the validation batch; stopped training")
