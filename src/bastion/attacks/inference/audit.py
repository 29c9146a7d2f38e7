"""Run membership attacks against one target: query it once, train references once.

``audit_membership`` is the one-line entry point the scan check and the CLI use. The
pool of records is the members, the non-members and an optional population; every
pool record is queried on the target exactly once and, when a recipe is given, lies in
the training set of half the reference models. Attacks then only score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bastion.attacks.inference._base import MembershipAttack, MembershipInputs
from bastion.attacks.inference._references import (
    ReferenceModels,
    TrainingRecipe,
    train_references,
)
from bastion.attacks.inference._result import MembershipResult, measure
from bastion.data.dataset import Dataset
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.progress import ProgressSink, emit
from bastion.typing import Classifier

__all__ = ["MembershipAudit", "audit_membership"]


@dataclass(frozen=True, kw_only=True)
class MembershipAudit:
    """Results per attack, the attacks left out (label → why) and the reference models.

    ``most_exposed`` in each result indexes the ``members`` dataset: members come first
    among the evaluated records.
    """

    results: list[MembershipResult]
    skipped: dict[str, str]
    references: ReferenceModels | None

    def strongest(self) -> MembershipResult:
        """The attack with the highest TPR at the lowest FPR the data resolves.

        That is 0.1 % FPR with at least 1,000 non-members, else 1 %; AUC breaks ties.
        """
        return max(self.results, key=lambda r: (
            r.tpr_at_fpr[0.001 if r.n_nonmembers >= 1000 else 0.01], r.auc))


def _labelled(data: Dataset, role: str) -> tuple[np.ndarray, np.ndarray]:
    if data.y is None:
        raise InvalidDataError(f"the {role} data has no labels; membership inference needs them")
    if len(data) == 0:
        raise InvalidDataError(
            f"the {role} set is empty; membership inference needs both members (training "
            "data) and non-members (held-out data)"
        )
    return np.asarray(data.x), np.asarray(data.y).astype(np.int64)


def audit_membership(
    model: Classifier,
    members: Dataset,
    nonmembers: Dataset,
    *,
    attacks: Sequence[MembershipAttack],
    recipe: TrainingRecipe | None = None,
    n_references: int = 8,
    population: Dataset | None = None,
    population_fraction: float = 0.25,
    seed: int = 0,
    n_jobs: int = 1,
    progress: ProgressSink | None = None,
) -> MembershipAudit:
    """Score every record of ``members`` ∪ ``nonmembers`` with each attack.

    Attacks that need reference models are skipped (with the reason) when ``recipe`` is
    None. RMIA needs population records known to be non-members: ``population`` when
    given, otherwise a seeded ``population_fraction`` of ``nonmembers`` is set aside for
    it and not evaluated. The target is queried once per pool record.
    """
    if not attacks:
        raise ConfigError("no membership attack selected; name at least one")
    x_in, y_in = _labelled(members, "member")
    x_out, y_out = _labelled(nonmembers, "non-member")
    if x_in.shape[1:] != x_out.shape[1:]:
        raise ShapeMismatchError(
            f"members have samples of shape {x_in.shape[1:]} but non-members {x_out.shape[1:]}"
        )
    # Independent streams: which non-members become population, and the references.
    pop_seq, ref_seq = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(pop_seq)
    needs_pop = any(a.needs_population and recipe is not None for a in attacks)
    is_pop = np.zeros(len(x_out), dtype=bool)
    x_pop, y_pop = x_out[:0], y_out[:0]
    if population is not None:
        x_pop, y_pop = _labelled(population, "population")
    elif needs_pop:
        if not 0.0 < population_fraction < 1.0:
            raise ConfigError(f"population_fraction={population_fraction} must lie in (0, 1)")
        n_pop = round(population_fraction * len(x_out))
        if n_pop < 1 or n_pop >= len(x_out):
            raise InvalidDataError(
                f"{len(x_out)} non-members are too few to set aside population records; "
                "give more held-out data or a separate population"
            )
        is_pop[rng.choice(len(x_out), n_pop, replace=False)] = True
    x = np.concatenate([x_in, x_out[~is_pop], x_out[is_pop], x_pop])
    y = np.concatenate([y_in, y_out[~is_pop], y_out[is_pop], y_pop])
    n_eval = len(x_in) + int((~is_pop).sum())
    is_member = np.arange(n_eval) < len(x_in)

    start_queries = model.n_queries
    probs = np.asarray(model.predict_proba(x), dtype=np.float64)
    n_queries = model.n_queries - start_queries
    if probs.shape != (len(x), model.n_classes) or int(y.max()) >= model.n_classes:
        raise ShapeMismatchError(
            f"the model returns {probs.shape[-1]} probabilities per record but labels go up "
            f"to {int(y.max())}; labels must be class indices of the model"
        )

    references = None
    skipped: dict[str, str] = {}
    runnable = list(attacks)
    if recipe is None:
        runnable = [a for a in attacks if not a.needs_references]
        skipped = {a.label: "no training recipe to build reference models"
                   for a in attacks if a.needs_references}
    elif any(a.needs_references for a in attacks):
        references = train_references(recipe, x, y, n_models=n_references,
                                      seed=int(ref_seq.generate_state(1)[0]), n_jobs=n_jobs,
                                      progress=progress)
    inputs = MembershipInputs(
        probs=probs, y=y, evaluated=np.arange(n_eval),
        population=np.arange(n_eval, len(x)), references=references, seed=seed,
    )
    results = []
    for k, attack in enumerate(runnable):
        emit(progress, "membership attacks", k, len(runnable), attack.label)
        began = time.perf_counter()
        scores = attack.scores(inputs)
        results.append(measure(attack.label, scores, is_member, y[:n_eval],
                               n_target_queries=n_queries,
                               wall_time_s=time.perf_counter() - began))
    emit(progress, "membership attacks", len(runnable), len(runnable))
    return MembershipAudit(results=results, skipped=skipped, references=references)
