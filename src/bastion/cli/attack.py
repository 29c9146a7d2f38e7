"""``bastion attack``: run one evasion attack on a model and data, save the adversarial inputs.

Module level imports only typer; torch and the attacks load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from bastion.errors import ConfigError, InvalidDataError


def _parse_floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, e.g. 0,1; got {text!r}"
                          ) from None


def register(app: typer.Typer) -> None:
    @app.command("attack")
    def attack(
        name: str | None = typer.Argument(None, help="Attack name (see --list)."),
        model: str | None = typer.Option(None, "--model", "-m", help="Model file or URL."),
        data: Path | None = typer.Option(None, "--data", "-d", help="Inputs with labels."),
        eps: float | None = typer.Option(None, "--eps", help="Perturbation budget."),
        norm: str = typer.Option("linf", "--norm", help="linf or l2."),
        targeted: bool = typer.Option(
            False, "--targeted", help="Aim each sample at a random other class (seeded)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write results (.npz)."),
        bounds: str = typer.Option("0,1", help="Input range of the model: LO,HI."),
        factory: str | None = typer.Option(
            None, help="module:function building the architecture for weights-only files."),
        limit: int | None = typer.Option(None, help="Attack only the first N samples."),
        surrogate: str | None = typer.Option(
            None, help="transfer: the local white-box model to craft the examples on."),
        surrogate_factory: str | None = typer.Option(
            None, help="transfer: module:function building the surrogate's architecture."),
        seed: int = typer.Option(0, help="Seed for the attack and the targets."),
        list_: bool = typer.Option(False, "--list", help="List attacks and what they need."),
    ) -> None:
        """Run an evasion attack; prints a summary and writes x_adv, success, norms, queries."""
        if list_:
            _list()
            return
        if name is None or model is None or data is None:
            raise ConfigError("give an attack NAME, --model and --data (or --list)")
        _run(name, model, data, eps=eps, norm=norm, targeted=targeted, out=out,
             bounds=_parse_floats(bounds, "--bounds"), factory=factory, limit=limit, seed=seed,
             surrogate=(surrogate, surrogate_factory))


def _list() -> None:
    from rich.console import Console
    from rich.table import Table

    from bastion.attacks import ATTACKS

    table = Table(title="Evasion attacks", title_justify="left")
    for col in ("name", "needs", "norms", "what it does"):
        table.add_column(col, overflow="fold")
    for attack_name, cls in ATTACKS.items():
        needs = ", ".join(r.__name__ for r in cls.requires)
        doc = _summary(cls.__doc__ or "")
        table.add_row(attack_name, needs, ", ".join(cls.norms), doc)
    Console().print(table)


def _summary(doc: str) -> str:
    """A docstring's first paragraph as plain text: one line, no reST literals."""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("``", "")


def _run(
    name: str, model_src: str, data: Path, *, eps: float | None, norm: str, targeted: bool,
    out: Path | None, bounds: tuple[float, ...] | None, factory: str | None,
    limit: int | None, seed: int, surrogate: tuple[str | None, str | None] = (None, None),
) -> None:
    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from bastion.attacks import ATTACKS
    from bastion.data import load_dataset
    from bastion.models.load import load_model

    cls = ATTACKS.get(name)
    if norm not in ("linf", "l2"):
        raise ConfigError(f"unknown norm {norm!r}; use linf or l2")
    if bounds is None or len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise ConfigError("--bounds must be two increasing numbers LO,HI, e.g. 0,1")
    if eps is None and not cls.minimal:
        raise ConfigError(f"attack {name!r} needs --eps (a positive budget)")
    ds = load_dataset(data)
    if ds.y is None:
        raise InvalidDataError(f"{data} has no labels; attacks need one label per sample")
    x, y = ds.x, ds.y
    if limit is not None:
        if limit < 1:
            raise ConfigError("--limit must be at least 1")
        x, y = x[:limit], y[:limit]
    clf = load_model(model_src, input_shape=ds.sample_shape, bounds=bounds, factory=factory)
    options: dict[str, Any] = {}
    surrogate_src, surrogate_factory = surrogate
    if surrogate_src is not None:
        if name != "transfer":
            raise ConfigError("--surrogate is only for the transfer attack")
        options["surrogate"] = load_model(surrogate_src, input_shape=ds.sample_shape,
                                          bounds=bounds, n_classes=clf.n_classes,
                                          factory=surrogate_factory)
    elif name == "transfer":
        raise ConfigError("the transfer attack needs --surrogate FILE: a local model for the "
                          "same task to craft the examples on")
    targets = None
    if targeted:
        rng = np.random.default_rng(seed)
        k = clf.n_classes
        targets = (y + 1 + rng.integers(0, k - 1, size=len(y))) % k
    instance = cls(eps=eps, norm=norm, **options)  # type: ignore[arg-type]  # norm checked
    result = instance(clf, x.astype(np.float32), y, targets=targets,
                      generator=torch.Generator().manual_seed(seed))
    arrays = result.to_numpy()
    if out is not None:
        saved: dict[str, Any] = {**arrays, "y": np.asarray(y)}
        if targets is not None:
            saved["targets"] = targets
        np.savez_compressed(out, **saved)

    table = Table(title=f"{name} (eps={eps}, {norm}{', targeted' if targeted else ''})",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    fooled = arrays["success"] & ~arrays["already_adversarial"]
    rows = [
        ("samples", f"{len(y)}"),
        ("already misclassified", f"{int(arrays['already_adversarial'].sum())}"),
        ("success rate", f"{result.success_rate:.1%}"),
        ("robust accuracy" if not targeted else "target missed", f"{result.robust_accuracy:.1%}"),
        ("median L-inf (fooled)", _median(arrays["linf"][fooled])),
        ("median L2 (fooled)", _median(arrays["l2"][fooled])),
        ("median queries", f"{float(np.median(arrays['n_queries'])):.0f}"),
        ("wall time", f"{result.wall_time_s:.2f} s"),
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if out is not None:
        Console().print(f"wrote {out}")


def _median(values: object) -> str:
    import numpy as np

    arr = np.asarray(values)
    return f"{float(np.median(arr)):.4g}" if arr.size else "-"
