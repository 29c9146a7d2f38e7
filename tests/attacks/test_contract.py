"""Every registered attack passes the shared contract suite, in both norms it supports."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.attacks import ATTACKS, EvasionAttack
from bastion.testing import check_attack
from bastion.typing import Differentiable

from .conftest import BlackBox, TorchNet

# Small budgets of work so the whole suite stays fast; the fields are the attacks' own.
_FAST = {"steps": 5, "max_queries": 40, "n_target_classes": 2, "max_iterations": 5,
         "n_binary_steps": 2, "init_evals": 10}


def _fast(cls: type[EvasionAttack], norm: str, white_box: object) -> EvasionAttack:
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, object] = {k: v for k, v in _FAST.items() if k in fields}
    if "surrogate" in fields:  # the transfer attack crafts on a white-box model
        kwargs |= {"surrogate": white_box, "crafting": {"steps": 3}}
    return cls(eps=0.1 if norm == "linf" else 1.0, norm=norm, **kwargs)


CASES = [(name, norm) for name, cls in ATTACKS.items() for norm in cls.norms]


@pytest.mark.parametrize(("name", "norm"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_attack_keeps_the_contract(tiny, name, norm) -> None:
    model, x, y = tiny
    cls = ATTACKS.get(name)
    target = model if Differentiable in cls.requires else BlackBox(model)
    surrogate = TorchNet(model.net, model.input_shape, model.n_classes)  # own query count
    check_attack(_fast(cls, norm, surrogate), target, x, y)
