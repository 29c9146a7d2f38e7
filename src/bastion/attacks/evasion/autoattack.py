"""AutoAttack (Croce & Hein, ICML 2020): the per-sample worst case of APGD-CE, APGD-T,
FAB-T and Square, each later attack run only on the samples still robust.

Parameter-free attacks with complementary failure modes: APGD-CE follows the gradient
of the cross-entropy, APGD-T the scale-invariant targeted DLR loss over the top
classes (robust to gradient masking by logit scaling), FAB-T searches for the closest
boundary point instead of maximising a loss, and the black-box Square attack
does not use gradients at all. The reported robust accuracy is therefore at most that of
each part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks.evasion.apgd import APGDCE, APGDT
from bastion.attacks.evasion.fab import FABT
from bastion.attacks.evasion.square import Square
from bastion.typing import Classifier, Differentiable

__all__ = ["AutoAttack"]


@ATTACKS.register("autoattack")
@dataclass(frozen=True, kw_only=True)
class AutoAttack(EvasionAttack):
    """APGD-CE, then APGD-T, FAB-T and Square on what is left (the "standard" set)."""

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    steps: int = 100
    n_target_classes: int = 9
    max_queries: int = 5000

    def parts(self, n_classes: int) -> list[EvasionAttack]:
        """The attacks run in turn; APGD-T needs 4 classes and is left out below that."""
        k = min(self.n_target_classes, n_classes - 1)
        eps = self.eps
        parts: list[EvasionAttack] = [APGDCE(eps=eps, norm=self.norm, steps=self.steps)]
        if n_classes >= 4:
            parts.append(APGDT(eps=eps, norm=self.norm, steps=self.steps, n_target_classes=k))
        parts.append(FABT(eps=eps, norm=self.norm, steps=self.steps, n_target_classes=k))
        parts.append(Square(eps=eps, norm=self.norm, max_queries=self.max_queries))
        return parts

    def search(self, problem: Problem) -> SearchResult:
        p = problem
        n, dev = len(p.x), p.x.device
        x_adv = p.x.clone()
        robust = torch.ones(n, dtype=torch.bool, device=dev)
        n_queries = torch.zeros(n, dtype=torch.long, device=dev)
        n_iter = torch.zeros(n, dtype=torch.long, device=dev)
        for attack in self.parts(p.clean_probs.shape[1]):
            todo = robust.nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            r = attack(p.model, p.x[todo], p.y[todo],
                       targets=None if p.targets is None else p.targets[todo],
                       generator=p.generator)
            x_adv[todo] = r.x_adv
            robust[todo] = ~r.success
            n_queries[todo] += r.n_queries
            n_iter[todo] += r.n_iterations
        return SearchResult(x_adv=x_adv, n_queries=n_queries, n_iterations=n_iter)
