"""``bastion attack-privacy``: membership inference, model extraction, inversion and
attribute inference against one model, from the command line.

Module level imports only typer; numpy, torch and the attacks load inside commands.
Every command prints a table; ``--json PATH`` also writes the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from bastion.errors import ConfigError


def _bounds(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--bounds must be two numbers LO,HI, e.g. 0,1; got {text!r}") from None
    if not low < high:
        raise ConfigError(f"--bounds {text!r} must be increasing, e.g. 0,1")
    return low, high


def _write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2))
        typer.echo(f"wrote {path}")


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


_MODEL = typer.Option(..., "--model", "-m", help="Model file or URL.")
_BOUNDS = typer.Option("0,1", "--bounds", help="Input range of the model: LO,HI.")
_FACTORY = typer.Option(None, "--factory",
                        help="module:function building the architecture for weights-only files.")
_SEED = typer.Option(0, "--seed", help="Seed for every random choice.")
_JSON = typer.Option(None, "--json", help="Also write the results as JSON.")


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help=(
        "Privacy and theft attacks: membership inference, model extraction, inversion, "
        "attribute inference."))
    app.add_typer(group, name="attack-privacy")

    @group.command("membership")
    def membership(
        model: str = _MODEL,
        train: Path = typer.Option(..., "--train", help="The model's training data (members)."),
        test: Path = typer.Option(..., "--test", help="Held-out data (non-members)."),
        attacks: str = typer.Option(
            "loss-threshold,lira,lira-offline,rmia,rmia-offline,shadow", "--attacks",
            help="Comma-separated: loss-threshold, shadow, lira, lira-offline, rmia, "
                 "rmia-offline."),
        recipe: str | None = typer.Option(
            None, "--recipe", help="module:train_fn training reference models "
                                   "(fn(x, y, *, seed) -> Classifier)."),
        n_references: int = typer.Option(8, "--n-references", help="Reference models (even)."),
        jobs: int = typer.Option(1, "--jobs", help="Reference models trained in parallel."),
        bounds: str = _BOUNDS,
        factory: str | None = _FACTORY,
        seed: int = _SEED,
        json_out: Path | None = _JSON,
    ) -> None:
        """Tell training members from held-out records: ROC AUC and TPR at low FPR."""
        _membership(model, train, test, attacks=attacks, recipe=recipe,
                    n_references=n_references, jobs=jobs, bounds=_bounds(bounds),
                    factory=factory, seed=seed, json_out=json_out)

    @group.command("extract")
    def extract(
        model: str = _MODEL,
        pool: Path | None = typer.Option(
            None, "--pool", help="Attacker's unlabelled data (knockoff, jacobian seeds)."),
        eval_data: Path = typer.Option(..., "--eval", help="Held-out data to measure the copy."),
        strategy: str = typer.Option("knockoff", "--strategy",
                                     help="knockoff, jacobian or random."),
        budget: int = typer.Option(1000, "--budget", help="Query budget."),
        rounds: int = typer.Option(4, "--rounds", help="Query/retrain rounds."),
        bounds: str = _BOUNDS,
        factory: str | None = _FACTORY,
        seed: int = _SEED,
        json_out: Path | None = _JSON,
    ) -> None:
        """Steal a copy through the prediction API; fidelity per query spent."""
        _extract(model, pool, eval_data, strategy=strategy, budget=budget, rounds=rounds,
                 bounds=_bounds(bounds), factory=factory, seed=seed, json_out=json_out)

    @group.command("invert")
    def invert(
        model: str = _MODEL,
        data: Path = typer.Option(..., "--data", "-d",
                                  help="Labelled records to judge the reconstructions by."),
        black_box: bool = typer.Option(False, "--black-box",
                                       help="Estimate gradients from probabilities only."),
        steps: int = typer.Option(300, "--steps", help="Gradient-descent steps."),
        out: Path | None = typer.Option(None, "--out", "-o",
                                        help="Write reconstructions (.npz)."),
        bounds: str = _BOUNDS,
        factory: str | None = _FACTORY,
        seed: int = _SEED,
        json_out: Path | None = _JSON,
    ) -> None:
        """Reconstruct one representative input per class (MI-FACE)."""
        _invert(model, data, black_box=black_box, steps=steps, out=out,
                bounds=_bounds(bounds), factory=factory, seed=seed, json_out=json_out)

    @group.command("attribute")
    def attribute(
        model: str = _MODEL,
        train: Path = typer.Option(..., "--train", help="Records to attack (the members)."),
        aux: Path = typer.Option(..., "--aux", help="The attacker's own labelled data."),
        column: str = typer.Option(..., "--column", help="Sensitive column: name or index."),
        bounds: str = _BOUNDS,
        factory: str | None = _FACTORY,
        seed: int = _SEED,
        json_out: Path | None = _JSON,
    ) -> None:
        """Infer a sensitive column through the model, against imputation without it."""
        _attribute(model, train, aux, column=column, bounds=_bounds(bounds), factory=factory,
                   seed=seed, json_out=json_out)


def _load(model: str, data: Path, bounds: tuple[float, float], factory: str | None) -> Any:
    from bastion.data import load_dataset
    from bastion.models.load import load_model

    ds = load_dataset(data)
    return load_model(model, input_shape=ds.sample_shape, bounds=bounds, factory=factory), ds


def _membership(model_src: str, train: Path, test: Path, *, attacks: str, recipe: str | None,
                n_references: int, jobs: int, bounds: tuple[float, float],
                factory: str | None, seed: int, json_out: Path | None) -> None:
    from bastion.attacks.inference import (
        RMIA,
        EntryPointRecipe,
        LiRA,
        LossThreshold,
        MembershipAttack,
        ShadowModels,
        SklearnRecipe,
        audit_membership,
    )
    from bastion.data import load_dataset

    known: dict[str, MembershipAttack] = {
        "loss-threshold": LossThreshold(), "shadow": ShadowModels(), "lira": LiRA(),
        "lira-offline": LiRA(online=False), "rmia": RMIA(), "rmia-offline": RMIA(online=False),
    }
    names = [a.strip() for a in attacks.split(",") if a.strip()]
    unknown = [a for a in names if a not in known]
    if unknown or not names:
        raise ConfigError(f"unknown membership attack(s) {unknown or names}; "
                          f"choose from {', '.join(known)}")
    model, members = _load(model_src, train, bounds, factory)
    nonmembers = load_dataset(test)
    estimator = getattr(model, "estimator", None)
    chosen = (EntryPointRecipe(entry_point=recipe) if recipe else
              SklearnRecipe(estimator=estimator, input_shape=model.input_shape,
                            bounds=model.bounds) if hasattr(estimator, "get_params") else None)
    audit = audit_membership(model, members, nonmembers, attacks=[known[n] for n in names],
                             recipe=chosen, n_references=n_references, seed=seed, n_jobs=jobs)
    rows = [[r.attack, f"{r.auc:.3f}", f"{r.tpr_at_fpr[0.001]:.2%}", f"{r.tpr_at_fpr[0.01]:.2%}",
             f"{r.balanced_accuracy:.3f}"] for r in audit.results]
    rows += [[name, "skipped", why, "", ""] for name, why in audit.skipped.items()]
    _table(f"Membership inference ({audit.results[0].n_members} members, "
           f"{audit.results[0].n_nonmembers} non-members)",
           ["attack", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "bal. acc."], rows)
    _write_json(json_out, {
        "results": [{"attack": r.attack, "auc": r.auc,
                     "tpr_at_fpr": {str(k): v for k, v in r.tpr_at_fpr.items()},
                     "balanced_accuracy": r.balanced_accuracy,
                     "per_class_auc": {str(k): v for k, v in r.per_class_auc.items()},
                     "most_exposed": r.most_exposed.tolist(),
                     "n_target_queries": r.n_target_queries} for r in audit.results],
        "skipped": audit.skipped,
    })


def _extract(model_src: str, pool: Path | None, eval_path: Path, *, strategy: str,
             budget: int, rounds: int, bounds: tuple[float, float], factory: str | None,
             seed: int, json_out: Path | None) -> None:
    import numpy as np

    from bastion.attacks.extraction import (
        JacobianAugmentation,
        KnockoffNets,
        QueryStrategy,
        RandomQueries,
        extract_model,
    )
    from bastion.data import load_dataset

    if budget < 1:
        raise ConfigError(f"--budget {budget} must be at least 1 query")
    if strategy not in ("knockoff", "jacobian", "random"):
        raise ConfigError(f"unknown strategy {strategy!r}; use knockoff, jacobian or random")
    if strategy != "random" and pool is None:
        raise ConfigError(f"the {strategy} strategy needs --pool (the attacker's data)")
    model, held_out = _load(model_src, eval_path, bounds, factory)
    pool_x = None if pool is None else np.asarray(load_dataset(pool).x, dtype=np.float32)
    chosen: QueryStrategy = (
        RandomQueries() if pool_x is None or strategy == "random"
        else KnockoffNets(pool=pool_x) if strategy == "knockoff"
        else JacobianAugmentation(seed_x=pool_x))
    result = extract_model(model, chosen, budget=budget, n_rounds=rounds, eval_x=held_out.x,
                           eval_y=held_out.y, seed=seed)
    rows = [[str(s.n_queries), f"{s.fidelity:.1%}",
             "-" if s.accuracy is None else f"{s.accuracy:.1%}"] for s in result.steps]
    _table(f"Extraction ({result.strategy}, budget {budget}; {result.n_eval_queries} "
           "evaluation queries not counted)", ["queries", "fidelity", "accuracy"], rows)
    _write_json(json_out, {"strategy": result.strategy, "n_queries": result.n_queries,
                           "n_eval_queries": result.n_eval_queries,
                           "steps": [vars(s) for s in result.steps]})


def _invert(model_src: str, data: Path, *, black_box: bool, steps: int, out: Path | None,
            bounds: tuple[float, float], factory: str | None, seed: int,
            json_out: Path | None) -> None:
    import numpy as np
    import torch

    from bastion.attacks.inference import MIFace, reconstruction_quality
    from bastion.errors import InvalidDataError

    model, ds = _load(model_src, data, bounds, factory)
    if ds.y is None:
        raise InvalidDataError(f"{data} has no labels; inversion is judged by class means")
    classes = np.unique(ds.y).astype(np.int64)
    result = MIFace(steps=steps, black_box=black_box)(
        model, classes, generator=torch.Generator().manual_seed(seed))
    quality = reconstruction_quality(result.reconstructions, result.classes, ds.x, ds.y)
    rows = [[str(c), f"{cos:.3f}", "yes" if ok else "no", f"{conf:.1%}"]
            for c, cos, ok, conf in zip(result.classes, quality.cosine, quality.identified,
                                        result.confidence, strict=True)]
    _table(f"MI-FACE ({'black' if black_box else 'white'}-box, {result.n_queries} queries): "
           f"{quality.identification_rate:.0%} of classes identified",
           ["class", "cosine to class mean", "identified", "model confidence"], rows)
    if out is not None:
        np.savez_compressed(out, reconstructions=result.reconstructions,
                            classes=result.classes, confidence=result.confidence)
        typer.echo(f"wrote {out}")
    _write_json(json_out, {"identification_rate": quality.identification_rate,
                           "cosine": quality.cosine.tolist(),
                           "n_queries": result.n_queries})


def _attribute(model_src: str, train: Path, aux: Path, *, column: str,
               bounds: tuple[float, float], factory: str | None, seed: int,
               json_out: Path | None) -> None:
    from bastion.attacks.inference import attribute_inference
    from bastion.data import load_dataset

    model, targets = _load(model_src, train, bounds, factory)
    key: int | str = int(column) if column.isdigit() else column
    result = attribute_inference(model, targets, load_dataset(aux), key, seed=seed)
    _table(f"Attribute inference of {result.column!r} on {result.n_records} records",
           ["guess", "accuracy"],
           [["through the model", f"{result.attack_accuracy:.1%}"],
            ["imputation (no model)", f"{result.baseline_accuracy:.1%}"],
            ["majority value", f"{result.majority_accuracy:.1%}"],
            ["advantage", f"{result.advantage:+.1%}"]])
    _write_json(json_out, {"column": result.column, "attack_accuracy": result.attack_accuracy,
                           "baseline_accuracy": result.baseline_accuracy,
                           "advantage": result.advantage, "n_queries": result.n_queries})
