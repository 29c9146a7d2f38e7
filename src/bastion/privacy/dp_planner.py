"""Plan DP-SGD: the noise multiplier for a target ε, or the ε a noise multiplier gives.

The arithmetic is Opacus' (its RDP accountant, Mironov 2017, and its PRV accountant,
Gopi et al. 2021, which is tighter); bastion only validates the request, runs both side
by side, and flags a δ that protects nothing. Poisson sampling at rate
``batch_size / n_samples`` for ``epochs`` passes is assumed, as Opacus trains.

δ is the probability that the ε guarantee fails outright; with δ ≥ 1/n a mechanism
that publishes one whole training record at random meets it, so δ must be well below
1/n (a common choice is 1/(10 n) or less).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bastion.errors import ConfigError

__all__ = ["Accountant", "DPPlan", "epsilon_for", "plan_noise"]

Accountant = Literal["rdp", "prv"]


@dataclass(frozen=True, kw_only=True)
class DPPlan:
    """One accountant's answer; ``notes`` holds warnings about the request."""

    accountant: Accountant
    noise_multiplier: float
    epsilon: float
    delta: float
    sample_rate: float
    steps: int
    notes: tuple[str, ...] = ()


def _check(n_samples: int, batch_size: int, epochs: float, delta: float) -> tuple[str, ...]:
    if n_samples < 1:
        raise ConfigError(f"n_samples={n_samples} must be at least 1")
    if not 1 <= batch_size <= n_samples:
        raise ConfigError(f"batch_size={batch_size} must lie in 1..n_samples ({n_samples})")
    if not epochs > 0:
        raise ConfigError(f"epochs={epochs} must be positive")
    if not 0.0 < delta < 1.0:
        raise ConfigError(f"delta={delta} must lie in (0, 1); use well below 1/n_samples")
    if delta >= 1.0 / n_samples:
        return (f"delta={delta:g} is at least 1/n = {1.0 / n_samples:g}: the guarantee then "
                f"allows leaking whole records; use delta <= {1.0 / (10 * n_samples):.1g}",)
    return ()


def _opacus() -> Any:
    with warnings.catch_warnings():
        # Opacus warns at import about optional speed-ups the accountants do not use.
        warnings.simplefilter("ignore")
        import opacus.accountants as accountants
        import opacus.accountants.utils as utils
    return accountants, utils


def _steps(epochs: float, sample_rate: float) -> int:
    return max(1, int(epochs / sample_rate))


def plan_noise(
    *,
    n_samples: int,
    batch_size: int,
    epochs: float,
    delta: float,
    target_epsilon: float,
    accountants: Sequence[Accountant] = ("rdp", "prv"),
) -> list[DPPlan]:
    """The smallest noise multiplier meeting ``(target_epsilon, delta)``, per accountant."""
    notes = _check(n_samples, batch_size, epochs, delta)
    if not target_epsilon > 0:
        raise ConfigError(f"target_epsilon={target_epsilon} must be positive")
    _, utils = _opacus()
    rate = batch_size / n_samples
    plans = []
    for name in accountants:
        sigma = float(utils.get_noise_multiplier(
            target_epsilon=target_epsilon, target_delta=delta, sample_rate=rate,
            epochs=epochs, accountant=name, epsilon_tolerance=0.01))
        plans.append(_evaluate(name, sigma, rate, _steps(epochs, rate), delta, notes))
    return plans


def epsilon_for(
    *,
    n_samples: int,
    batch_size: int,
    epochs: float,
    delta: float,
    noise_multiplier: float,
    accountants: Sequence[Accountant] = ("rdp", "prv"),
) -> list[DPPlan]:
    """The ε that ``noise_multiplier`` gives at ``delta``, per accountant."""
    notes = _check(n_samples, batch_size, epochs, delta)
    if not (noise_multiplier > 0 and math.isfinite(noise_multiplier)):
        raise ConfigError(f"noise_multiplier={noise_multiplier} must be a positive number")
    rate = batch_size / n_samples
    return [_evaluate(name, noise_multiplier, rate, _steps(epochs, rate), delta, notes)
            for name in accountants]


def _evaluate(name: Accountant, sigma: float, rate: float, steps: int, delta: float,
              notes: tuple[str, ...]) -> DPPlan:
    accountants, _ = _opacus()
    if name not in ("rdp", "prv"):
        raise ConfigError(f"unknown accountant {name!r}; use rdp or prv")
    acc = accountants.RDPAccountant() if name == "rdp" else accountants.PRVAccountant()
    acc.history = [(sigma, rate, steps)]
    return DPPlan(accountant=name, noise_multiplier=sigma,
                  epsilon=float(acc.get_epsilon(delta=delta)), delta=delta,
                  sample_rate=rate, steps=steps, notes=notes)
