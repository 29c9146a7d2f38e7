"""Transfer attack (Papernot et al., 2016): craft on a surrogate, evaluate on the target.

Adversarial examples often fool other models trained for the same task. The examples
are crafted with any registered gradient attack (PGD by default) on a white-box
``surrogate`` the attacker controls; the target is only asked for its predictions — once
for the clean check and once by the base to judge success — so the attack works on any
model bastion adapts (ONNX, scikit-learn trees, HTTP endpoints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.errors import ConfigError, ShapeMismatchError
from bastion.typing import Classifier, Differentiable

__all__ = ["Transfer"]


@ATTACKS.register("transfer")
@dataclass(frozen=True, kw_only=True)
class Transfer(EvasionAttack):
    """Examples crafted on ``surrogate`` with the attack ``crafted_with`` (options in
    ``crafting``), judged on the target."""

    requires: ClassVar[tuple[type, ...]] = (Classifier,)
    surrogate: Any = None
    crafted_with: str = "pgd"
    crafting: dict[str, Any] = field(default_factory=dict)

    def search(self, problem: Problem) -> SearchResult:
        p, s = problem, self.surrogate
        if not (isinstance(s, Classifier) and isinstance(s, Differentiable)):
            raise ConfigError(
                "transfer needs surrogate=<a white-box model> (e.g. a TorchClassifier "
                "trained on the same task)"
            )
        if tuple(s.input_shape) != tuple(p.model.input_shape) or s.n_classes != \
                p.model.n_classes:
            raise ShapeMismatchError(
                f"the surrogate takes {tuple(s.input_shape)} with {s.n_classes} classes but "
                f"the target takes {tuple(p.model.input_shape)} with {p.model.n_classes}; "
                "use a surrogate for the same task"
            )
        inner = ATTACKS.get(self.crafted_with)(eps=self.eps, norm=self.norm, **self.crafting)
        crafted = inner(s, p.x, p.y, targets=p.targets, generator=p.generator)
        # The target is not queried while crafting; the base's final check judges success.
        return SearchResult(x_adv=crafted.x_adv, n_queries=crafted.n_queries * 0,
                            n_iterations=crafted.n_iterations)
