"""Contract suites every plug-in must pass: ``check_check``, ``check_renderer``, ``check_attack``.

Each suite lives in its own module and is imported on first use, so importing
``bastion.testing`` does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["check_attack", "check_check", "check_renderer"]

_WHERE = {
    "check_check": "bastion.testing.checks",
    "check_renderer": "bastion.testing.renderers",
    "check_attack": "bastion.testing.attacks",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'bastion.testing' has no attribute {name!r}")
