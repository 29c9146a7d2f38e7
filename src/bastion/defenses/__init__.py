"""Defenses: training (adversarial, DP-SGD, distillation), wrappers, output hardening.

Every hardening method registers in :data:`HARDENERS` and follows the contract in
:mod:`bastion.defenses._base` (read its docstring before writing one). Importing this
package is cheap: no torch until a method is looked up.
"""

from __future__ import annotations

from bastion.defenses._base import (
    HARDENERS,
    Hardener,
    HardenResult,
    build_hardener,
    check_applicable,
    copy_torch_model,
    hardener_name,
    supported_hardeners,
)

__all__ = [
    "HARDENERS",
    "HardenResult",
    "Hardener",
    "build_hardener",
    "check_applicable",
    "copy_torch_model",
    "hardener_name",
    "supported_hardeners",
]
