"""Attacks on models. Evasion attacks live in ``attacks/evasion/``, one file each.

Look attacks up by name in :data:`ATTACKS` (``ATTACKS.get("pgd")(eps=8/255)``); each is a
frozen dataclass configured by its constructor and run as
``attack(model, x, y, targets=None, generator=None) -> AttackResult``. The names below are
loaded on first use, so importing a sibling package (``attacks.inference``) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.attacks._base import (
        ATTACKS,
        AttackResult,
        EvasionAttack,
        Problem,
        SearchResult,
        supported_attacks,
    )

__all__ = ["ATTACKS", "AttackResult", "EvasionAttack", "Problem", "SearchResult",
           "supported_attacks"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("bastion.attacks._base"), name)
    raise AttributeError(f"module 'bastion.attacks' has no attribute {name!r}")
