"""DP-SGD training (Abadi et al. 2016) through Opacus, for a target (ε, δ).

Per-sample gradients, clipping, noise and the privacy accountant are Opacus'; bastion
chooses the noise multiplier with :mod:`bastion.privacy.dp_planner` (the smallest one
that meets the target with Poisson sampling at ``batch_size / n`` for ``epochs``),
trains, and reports the ε the accountant actually spent. A target that would need more
noise than ``max_noise_multiplier`` (the gradient of a batch would drown in it) is
refused with what to change.

The network is re-initialised first (``from_scratch``): weights that have already seen
the data outside DP-SGD would carry no guarantee. No checkpoint is chosen on validation
data, which would be a data-dependent choice outside the accounting; the last weights
are kept and validation accuracy is only logged.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F

from bastion.defenses._base import HARDENERS, HardenResult, copy_torch_model, hardener_name
from bastion.defenses._training import (
    Batches,
    Optimizer,
    accuracy,
    make_optimizer,
    reset_parameters,
    train_val,
)
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.progress import emit
from bastion.typing import Classifier, Differentiable

if TYPE_CHECKING:
    from bastion.data import Dataset
    from bastion.models.torch import TorchClassifier
    from bastion.progress import ProgressSink

__all__ = ["DPSGD", "choose_noise"]


def choose_noise(
    *, n_samples: int, batch_size: int, epochs: int, delta: float, target_epsilon: float,
    accountant: Literal["rdp", "prv"], max_noise_multiplier: float,
) -> float:
    """The planner's noise multiplier for the target, or a one-line reason it cannot be met."""
    from bastion.privacy.dp_planner import plan_noise

    where = (f"target epsilon={target_epsilon:g} (delta={delta:g}) with {n_samples} samples, "
             f"batch size {batch_size} and {epochs} epochs")
    # Opacus samples each record with rate 1 / (number of batches) and takes that many
    # steps per epoch; planning for batch_size * n_batches records gives the planner the
    # very same rate and step count, so the accountant lands on the target.
    n_batches = -(-n_samples // batch_size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RDP's "optimal order" notes while searching
            (plan,) = plan_noise(n_samples=batch_size * n_batches, batch_size=batch_size,
                                 epochs=epochs, delta=delta, target_epsilon=target_epsilon,
                                 accountants=(accountant,))
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where} cannot be met at any noise level; raise the target "
                          "epsilon, train fewer epochs or use more data") from None
    if plan.noise_multiplier > max_noise_multiplier:
        raise ConfigError(
            f"{where} needs noise multiplier {plan.noise_multiplier:.3g}, above "
            f"max-noise-multiplier={max_noise_multiplier:g}: the noise would drown the "
            "gradient; raise the target epsilon, train fewer epochs or use more data"
        )
    return plan.noise_multiplier


@HARDENERS.register("dp-sgd")
@dataclass(frozen=True, kw_only=True)
class DPSGD:
    """Differentially private training with Opacus at ``(target_epsilon, delta)``.

    ``delta`` defaults to ``1 / (10 n)``; ``noise_multiplier`` overrides the planner
    (the report then gives the ε it buys). ``max_grad_norm`` is the per-sample clipping
    bound C.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    masks_gradients: ClassVar[bool] = False
    target_epsilon: float = 3.0
    delta: float | None = None
    noise_multiplier: float | None = None
    max_noise_multiplier: float = 10.0
    max_grad_norm: float = 1.0
    epochs: int = 10
    batch_size: int = 64
    optimizer: Optimizer = "sgd"
    lr: float = 0.05
    accountant: Literal["rdp", "prv"] = "prv"
    val_fraction: float = 0.1
    from_scratch: bool = True

    def apply(
        self, model: Classifier, train: Dataset, *, val: Dataset | None = None, seed: int = 0,
        progress: ProgressSink | None = None,
    ) -> HardenResult:
        """Train a fresh copy of ``model``'s network with DP-SGD on ``train``."""
        name = hardener_name(type(self))
        net = copy_torch_model(model)
        _check_opacus_compatible(net.module)
        if self.from_scratch:
            reset_parameters(net.module, seed)
        data, held_out = train_val(net, train, val, val_fraction=self.val_fraction, seed=seed)
        n = len(data)
        if not 1 <= self.batch_size <= n or self.epochs < 1:
            raise ConfigError(f"{name} needs epochs >= 1 and batch-size in 1..{n}")
        if not self.max_grad_norm > 0:
            raise ConfigError(f"{name} max-grad-norm must be positive")
        delta = self.delta if self.delta is not None else 1.0 / (10 * n)
        sigma = self.noise_multiplier
        if sigma is None:
            sigma = choose_noise(n_samples=n, batch_size=self.batch_size, epochs=self.epochs,
                                 delta=delta, target_epsilon=self.target_epsilon,
                                 accountant=self.accountant,
                                 max_noise_multiplier=self.max_noise_multiplier)
        elif not sigma > 0:
            raise ConfigError(f"{name} noise-multiplier must be positive")
        clean = copy.deepcopy(net.module)  # hook-free twin that receives the trained weights
        log, epsilon = self._train(net, data, held_out, sigma, delta, seed, progress, name)
        clean.load_state_dict(net.module.state_dict())
        net.module = clean.eval()
        notes = [f"DP-SGD with noise multiplier {sigma:.3g} and clipping bound "
                 f"{self.max_grad_norm:g}: ({epsilon:.3g}, {delta:.2g})-DP by the "
                 f"{self.accountant.upper()} accountant over {self.epochs} epochs", _SEEDED]
        if not self.from_scratch:
            notes.append("training started from the given weights: the guarantee covers "
                         "only this run, so those weights must not have seen this data")
        metrics = {"epsilon": epsilon, "delta": delta, "noise_multiplier": sigma,
                   "max_grad_norm": self.max_grad_norm,
                   "validation_clean_accuracy": accuracy(net, held_out)}
        if self.noise_multiplier is None:
            metrics["target_epsilon"] = self.target_epsilon
        return HardenResult(model=net, method=name, module=net.module, log=tuple(log),
                            metrics=metrics, notes=tuple(notes))

    def _train(
        self, net: TorchClassifier, data: Batches, held_out: Batches, sigma: float,
        delta: float, seed: int, progress: ProgressSink | None, task: str,
    ) -> tuple[list[dict[str, float]], float]:
        """Opacus' training loop: Poisson batches, clipped noisy steps, the accountant."""
        from torch.utils.data import DataLoader, TensorDataset

        opacus = _opacus()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Secure RNG turned off")  # said in the notes
            engine = opacus.PrivacyEngine(accountant=self.accountant)
        opt = make_optimizer(list(net.module.parameters()), self.optimizer, self.lr, 0.0)
        dev = net.device
        loader = DataLoader(TensorDataset(data.x.cpu(), data.y.cpu()),
                            batch_size=self.batch_size,
                            generator=torch.Generator().manual_seed(seed))
        net.module.train()  # Opacus refuses a module in eval mode
        private, dp_opt, dp_loader = engine.make_private(
            module=net.module, optimizer=opt, data_loader=loader, noise_multiplier=sigma,
            max_grad_norm=self.max_grad_norm, poisson_sampling=True,
            noise_generator=torch.Generator(device=dev).manual_seed(seed + 1),
        )
        log: list[dict[str, float]] = []
        try:
            for epoch in range(self.epochs):
                emit(progress, task, epoch, self.epochs)
                private.train()
                loss = _private_epoch(net, dp_loader, dp_opt)
                private.eval()
                # The accountant is asked once, at the end: a PRV read-out costs about as
                # much as an epoch of a small model.
                log.append({"epoch": float(epoch + 1), "loss": loss,
                            "clean_accuracy": accuracy(net, held_out)})
        finally:
            private.remove_hooks()
        emit(progress, task, self.epochs, self.epochs)
        return log, float(engine.get_epsilon(delta))


def _private_epoch(net: TorchClassifier, loader: Any, optimizer: Any) -> float:
    """One pass over Opacus' Poisson batches; the mean training loss."""
    dev = net.device
    total, seen = torch.zeros((), device=dev), 0
    with warnings.catch_warnings():
        # Opacus' hooks fire although the inputs need no gradient; that is expected.
        warnings.filterwarnings("ignore", "Full backward hook is firing")
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net.logits(x), y)
            torch.autograd.backward(loss)
            optimizer.step()
            total += loss.detach() * len(y)
            seen += len(y)
    return float(total) / max(seen, 1)


def _opacus() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # import-time notes about optional speed-ups
        import opacus
    return opacus


_SEEDED = ("the noise and batch sampling are seeded for reproducibility (Opacus secure_mode "
           "off); for a release, retrain with a cryptographically secure generator")


def _check_opacus_compatible(module: torch.nn.Module) -> None:
    """Opacus' validator on the network: BatchNorm and friends mix samples and break DP."""
    module.train()  # the validator also insists on training mode, which is not a defect
    try:
        errors = _opacus().validators.ModuleValidator.validate(module, strict=False)
    finally:
        module.eval()
    if errors:
        first = " ".join(str(errors[0]).split())
        raise UnsupportedModelError(
            f"DP-SGD cannot train this network ({len(errors)} problem(s), first: {first}); "
            "replace BatchNorm with GroupNorm and retrain, or pick another method"
        )
