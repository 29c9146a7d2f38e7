"""``bastion privacy dp-plan``: the DP-SGD noise for a target ε, or the ε of a noise level.

Kept apart from the PII commands; Opacus loads only when the command runs.
"""

from __future__ import annotations

import json
import sys
import warnings

from bastion.errors import ConfigError


def _numbers(text: str | None, flag: str) -> list[float]:
    if text is None:
        return []
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated numbers, e.g. 0.5,1,2") from None
    if not values:
        raise ConfigError(f"{flag} takes comma-separated numbers, e.g. 0.5,1,2")
    return values


def run(*, n_samples: int, batch_size: int, epochs: float, delta: float | None,
        epsilon: str | None, noise_multiplier: str | None, as_json: bool) -> None:
    """Print one row per requested value and accountant (RDP and PRV side by side)."""
    from bastion.privacy.dp_planner import epsilon_for, plan_noise

    targets, sigmas = _numbers(epsilon, "--epsilon"), _numbers(noise_multiplier,
                                                             "--noise-multiplier")
    if bool(targets) == bool(sigmas):
        raise ConfigError("give exactly one of --epsilon (to plan the noise) and "
                          "--noise-multiplier (to get the epsilon it gives)")
    if n_samples < 1:
        raise ConfigError(f"--n-samples must be at least 1, not {n_samples}")
    # A common choice well below 1/n when none is given.
    chosen_delta = delta if delta is not None else 10.0 ** -len(str(10 * n_samples))
    with warnings.catch_warnings():
        # RDP's "optimal order is the largest alpha": its bound is loose there, which is
        # why PRV is shown beside it.
        warnings.simplefilter("ignore", UserWarning)
        plans = ([p for t in targets for p in plan_noise(
                     n_samples=n_samples, batch_size=batch_size, epochs=epochs,
                     delta=chosen_delta, target_epsilon=t)]
                 if targets else
                 [p for s in sigmas for p in epsilon_for(
                     n_samples=n_samples, batch_size=batch_size, epochs=epochs,
                     delta=chosen_delta, noise_multiplier=s)])
    notes = sorted({n for p in plans for n in p.notes})
    if as_json:
        json.dump({"n_samples": n_samples, "batch_size": batch_size, "epochs": epochs,
                   "delta": chosen_delta, "notes": notes,
                   "plans": [{"accountant": p.accountant, "noise_multiplier": p.noise_multiplier,
                              "epsilon": p.epsilon, "sample_rate": p.sample_rate,
                              "steps": p.steps} for p in plans]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    from rich.console import Console
    from rich.table import Table

    from bastion.cli._ui import err_console

    table = Table(title=f"DP-SGD at n={n_samples}, batch {batch_size}, {epochs:g} epochs, "
                        f"delta={chosen_delta:g} (Poisson sampling)", title_justify="left")
    given, found = ("epsilon", "noise multiplier") if targets else ("noise multiplier",
                                                                    "epsilon")
    table.add_column(given, justify="right")
    for name in ("RDP", "PRV"):
        table.add_column(f"{found} ({name})", justify="right")
    for value, pair in zip(targets or sigmas, zip(plans[::2], plans[1::2], strict=True),
                           strict=True):
        shown = [p.noise_multiplier if targets else p.epsilon for p in pair]
        table.add_row(f"{value:g}", *(f"{v:.3f}" for v in shown))
    Console().print(table)
    if targets:
        err_console.print("Each is the smallest noise meeting the target under that "
                          "accountant; PRV is the tighter bound.")
    for note in notes:
        err_console.print(f"[yellow]warning:[/] {note}")
