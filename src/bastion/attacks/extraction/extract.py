"""Model extraction through the black-box ``Classifier`` only, under a query budget.

``extract_model`` alternates: the strategy proposes inputs, the target answers them
(each one query, counted by the adapter, so an HTTP endpoint's meter is what is
reported), and a fresh surrogate is trained on all answers so far. After each round
the surrogate is measured on held-out records: *fidelity* is agreement with the
target's top label (Jagielski et al., 2020), *accuracy* agreement with the true label.
The target's labels on the held-out records are asked once, up front, and reported
apart from the attack budget: a real attacker would not need them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bastion.attacks.extraction._base import ExtractionState, QueryStrategy
from bastion.attacks.extraction._surrogate import SurrogateFactory, mlp_surrogate, train_surrogate
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.progress import ProgressSink, emit
from bastion.typing import Classifier

if TYPE_CHECKING:
    from bastion.models.torch import TorchClassifier

__all__ = ["ExtractionResult", "ExtractionStep", "extract_model"]


@dataclass(frozen=True, kw_only=True)
class ExtractionStep:
    """The surrogate after ``n_queries`` attack queries."""

    n_queries: int
    fidelity: float
    accuracy: float | None


@dataclass(frozen=True, kw_only=True)
class ExtractionResult:
    """The stolen copy and how it improved with queries spent."""

    strategy: str
    surrogate: TorchClassifier
    steps: list[ExtractionStep]
    n_queries: int
    n_eval_queries: int
    wall_time_s: float

    @property
    def fidelity(self) -> float:
        return self.steps[-1].fidelity

    @property
    def accuracy(self) -> float | None:
        return self.steps[-1].accuracy


def extract_model(
    model: Classifier,
    strategy: QueryStrategy,
    *,
    budget: int,
    eval_x: np.ndarray,
    eval_y: np.ndarray | None = None,
    n_rounds: int = 4,
    factory: SurrogateFactory = mlp_surrogate,
    soft_labels: bool = True,
    epochs: int = 40,
    seed: int = 0,
    progress: ProgressSink | None = None,
) -> ExtractionResult:
    """Steal ``model`` with at most ``budget`` queries spread over ``n_rounds`` rounds.

    Budget left unspent by a round (a strategy that runs dry, like Jacobian augmentation
    while its known set is small) carries over to the next.
    """
    if budget < 1:
        raise ConfigError(f"query budget {budget} must be at least 1")
    if n_rounds < 1:
        raise ConfigError(f"n_rounds={n_rounds} must be at least 1")
    eval_x = np.asarray(eval_x, dtype=np.float32)
    if len(eval_x) == 0:
        raise InvalidDataError("extraction needs held-out records to measure the surrogate")
    if eval_x.shape[1:] != tuple(model.input_shape):
        raise ShapeMismatchError(
            f"evaluation records have shape {eval_x.shape[1:]} but the model takes "
            f"{tuple(model.input_shape)}"
        )
    started = time.perf_counter()
    seq = np.random.SeedSequence(seed)
    rng = np.random.default_rng(seq.spawn(1)[0])
    before = model.n_queries
    target_eval = np.asarray(model.predict_proba(eval_x)).argmax(1)
    n_eval_queries = model.n_queries - before

    shape, bounds = tuple(model.input_shape), model.bounds
    xs = np.zeros((0, *shape), dtype=np.float32)
    ps = np.zeros((0, model.n_classes), dtype=np.float64)
    surrogate: TorchClassifier | None = None
    steps: list[ExtractionStep] = []
    spent = 0
    for rnd in range(n_rounds):
        ask = math.ceil((budget - spent) / (n_rounds - rnd))
        state = ExtractionState(round=rnd, x=xs, probs=ps, surrogate=surrogate,
                                input_shape=shape, bounds=bounds, seed=seed)
        new = np.asarray(strategy.propose(ask, state, rng), dtype=np.float32)[:ask]
        if len(new) == 0:
            break
        start = model.n_queries
        answers = np.asarray(model.predict_proba(new), dtype=np.float64)
        spent += model.n_queries - start
        xs, ps = np.concatenate([xs, new]), np.concatenate([ps, answers])
        surrogate = train_surrogate(xs, ps, input_shape=shape, bounds=bounds, factory=factory,
                                    soft_labels=soft_labels, epochs=epochs, seed=seed + rnd)
        steps.append(_measure(surrogate, spent, eval_x, target_eval, eval_y))
        emit(progress, f"extraction ({strategy.label})", spent, budget)
        if spent >= budget:
            break
    if surrogate is None:
        raise InvalidDataError(f"the {strategy.label} strategy proposed no queries")
    return ExtractionResult(strategy=strategy.label, surrogate=surrogate, steps=steps,
                            n_queries=spent, n_eval_queries=n_eval_queries,
                            wall_time_s=time.perf_counter() - started)


def _measure(surrogate: TorchClassifier, spent: int, eval_x: np.ndarray,
             target_eval: np.ndarray, eval_y: np.ndarray | None) -> ExtractionStep:
    pred = surrogate.predict_proba(eval_x).argmax(1)
    accuracy = None if eval_y is None else float((pred == np.asarray(eval_y)).mean())
    return ExtractionStep(n_queries=spent, fidelity=float((pred == target_eval).mean()),
                          accuracy=accuracy)
