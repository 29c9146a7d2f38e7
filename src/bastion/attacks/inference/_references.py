"""Reference (shadow) models: trained from the user's recipe on seeded halves of a pool.

Shadow models (Shokri et al., 2017), LiRA (Carlini et al., 2022) and RMIA (Zarifzadeh
et al., 2024) all compare the target with models trained the same way on data whose
membership the attacker controls. Following Carlini et al., every record of the pool
is put in the training set of exactly half the reference models: models come in pairs
trained on complementary, class-stratified halves, so each record has as many IN as
OUT models (online attacks use both, offline attacks only the OUT ones).

A *recipe* is how to train one model: a scikit-learn estimator is cloned and refit; any
other framework gives a ``module:train_fn`` entry point whose function takes
``(x, y, *, seed)`` and returns a trained :class:`~bastion.typing.Classifier`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.progress import ProgressSink, emit
from bastion.typing import Classifier

__all__ = [
    "EntryPointRecipe",
    "ReferenceModels",
    "SklearnRecipe",
    "TrainingRecipe",
    "train_references",
    "true_class_probability",
]


@runtime_checkable
class TrainingRecipe(Protocol):
    """Trains one model like the target was trained, on the given data and seed."""

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> Classifier: ...


@dataclass(frozen=True, kw_only=True)
class SklearnRecipe:
    """Clone an (unfitted or fitted) scikit-learn estimator and refit it.

    Every ``random_state`` parameter of the clone (nested ones in pipelines included)
    is set from ``seed`` so that reference models differ and runs repeat.
    """

    estimator: Any
    input_shape: tuple[int, ...] | None = None
    bounds: tuple[float, float] = (0.0, 1.0)

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> Classifier:
        from sklearn.base import clone

        from bastion.models.sklearn import SklearnClassifier

        model = clone(self.estimator)
        seeds = {k: seed for k in model.get_params() if k.endswith("random_state")}
        model.set_params(**seeds)
        model.fit(x.reshape(len(x), -1), y)
        return SklearnClassifier(model, input_shape=self.input_shape, bounds=self.bounds)


@dataclass(frozen=True, kw_only=True)
class EntryPointRecipe:
    """A ``package.module:function`` that trains a model: ``fn(x, y, *, seed) -> Classifier``.

    This is how a torch (or any other) training loop is given: the function builds,
    trains and wraps the model (e.g. in :class:`bastion.models.TorchClassifier`). With
    ``n_jobs > 1`` several calls run at once in threads, so the function should draw
    randomness only from generators seeded with ``seed`` (``torch.Generator``), never
    from global state such as ``torch.manual_seed``.
    """

    entry_point: str

    def __post_init__(self) -> None:
        module, sep, attr = self.entry_point.partition(":")
        if not (module and sep and attr):
            raise ConfigError(
                f"training recipe {self.entry_point!r} must look like 'package.module:train_fn'"
            )

    def function(self) -> Callable[..., Classifier]:
        module, _, attr = self.entry_point.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"cannot load training recipe {self.entry_point!r} ({exc}); "
                "check the module is importable and defines the function"
            ) from None
        if not callable(fn):
            raise ConfigError(f"training recipe {self.entry_point!r} is not callable")
        return fn  # type: ignore[no-any-return]

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> Classifier:
        model = self.function()(x, y, seed=seed)
        if not isinstance(model, Classifier):
            raise ConfigError(
                f"training recipe {self.entry_point!r} returned {type(model).__name__}; "
                "it must return a Classifier (e.g. bastion.models.TorchClassifier)"
            )
        return model


@dataclass(frozen=True, kw_only=True)
class ReferenceModels:
    """Outputs of the reference models on every pool record.

    ``probs[k, i]`` is model ``k``'s probability vector on record ``i``; ``in_mask[k, i]``
    says whether record ``i`` was in model ``k``'s training set. ``train_time_s`` is the
    mean wall time to train one model.
    """

    probs: np.ndarray
    in_mask: np.ndarray
    train_time_s: float

    @property
    def n_models(self) -> int:
        return int(self.in_mask.shape[0])


def paired_masks(y: np.ndarray, n_models: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_models, n)`` IN masks: pairs of complementary, class-stratified halves."""
    if n_models < 2 or n_models % 2:
        raise ConfigError(
            f"n_references={n_models}: reference models come in IN/OUT pairs; "
            "give an even number of at least 2"
        )
    masks = np.zeros((n_models, len(y)), dtype=bool)
    for k in range(0, n_models, 2):
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            # Alternate which half gets the odd record so sizes stay balanced.
            half = (len(idx) + (k // 2) % 2) // 2
            masks[k, idx[:half]] = True
        masks[k + 1] = ~masks[k]
    return masks


def train_references(
    recipe: TrainingRecipe,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_models: int,
    seed: int,
    n_jobs: int = 1,
    progress: ProgressSink | None = None,
) -> ReferenceModels:
    """Train ``n_models`` reference models on paired halves of ``(x, y)`` and query them.

    Models are trained in ``n_jobs`` threads (scikit-learn and torch release the GIL
    in their numeric kernels); model ``k`` always gets the same data and seed, so the
    result does not depend on ``n_jobs``.
    """
    if len(x) != len(y):
        raise ShapeMismatchError(f"{len(x)} records but {len(y)} labels")
    if len(np.unique(y)) < 2:
        raise InvalidDataError("reference models need records of at least two classes")
    seq = np.random.SeedSequence(seed)
    masks = paired_masks(y, n_models, np.random.default_rng(seq.spawn(1)[0]))
    seeds = [int(s.generate_state(1)[0]) for s in seq.spawn(n_models)]
    done = 0

    def one(k: int) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        model = recipe.fit(x[masks[k]], y[masks[k]], seed=seeds[k])
        elapsed = time.perf_counter() - start
        return np.asarray(model.predict_proba(x), dtype=np.float64), elapsed

    emit(progress, "reference models", 0, n_models)
    outputs: list[tuple[np.ndarray, float]] = []
    with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
        for out in pool.map(one, range(n_models)):
            outputs.append(out)
            done += 1
            emit(progress, "reference models", done, n_models)
    probs = np.stack([p for p, _ in outputs])
    _check_columns(probs, y)
    return ReferenceModels(
        probs=probs, in_mask=masks, train_time_s=float(np.mean([t for _, t in outputs]))
    )


def _check_columns(probs: np.ndarray, y: np.ndarray) -> None:
    if probs.ndim != 3 or probs.shape[2] <= int(y.max()):
        raise ShapeMismatchError(
            f"reference models return {probs.shape[-1]} probabilities per record but labels "
            f"go up to {int(y.max())}; the recipe must train on every class"
        )


def true_class_probability(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``probs[..., i, y_i]``: each record's probability of its own label."""
    idx = np.asarray(y)[:, None]
    return np.take_along_axis(probs, np.broadcast_to(idx, (*probs.shape[:-1], 1)), axis=-1)[..., 0]
