"""The Check protocol: one scan plug-in that looks at a target and returns findings.

A check declares the OWASP ML Top 10 and MITRE ATLAS ids it speaks to and what it
``needs`` from the target; ``applies`` says whether it can run on what the user gave.
The runner calls ``run`` and keeps findings, errors and skips apart.

Writing a check::

    @CHECKS.register("data-quality")
    @dataclass(frozen=True, kw_only=True)
    class DataQuality:
        name: ClassVar[str] = "data-quality"
        title: ClassVar[str] = "Training data quality"
        owasp: ClassVar[tuple[str, ...]] = ("ML02",)
        atlas: ClassVar[tuple[str, ...]] = ("AML.T0020",)
        needs: ClassVar[tuple[Need, ...]] = ("train",)
        outlier_fraction: float = 0.01

        def applies(self, target: Target) -> bool:
            return not target.missing(self.needs)

        def run(self, target: Target, ctx: ScanContext) -> list[Finding]: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from bastion.data.dataset import Dataset
from bastion.progress import ProgressSink
from bastion.registry import Registry
from bastion.report.finding import Finding
from bastion.typing import Classifier, Differentiable

__all__ = ["CHECKS", "NEED_HINTS", "Check", "Need", "ScanContext", "Target"]

Need = Literal["model", "differentiable", "train", "test", "data", "model-file", "labels",
               "train-file"]

NEED_HINTS: dict[str, str] = {
    "model": "a model (--model)",
    "differentiable": "a model with gradients (torch, or a scikit-learn linear model/MLP)",
    "train": "training data (--data)",
    "test": "held-out test data (--test)",
    "data": "some data (--data or --test)",
    "model-file": "a model file (--model PATH)",
    "labels": "labels in the data",
    "train-file": "training data (--data)",
}


@dataclass(kw_only=True)
class Target:
    """Everything the user handed over; any part may be missing.

    ``model_path`` is the file the model came from (for artifact checks); ``model`` is
    the loaded adapter. ``train`` is the data the model was trained on (``--data``),
    ``test`` held-out data (``--test``). ``train_file`` is the ``--data`` file itself,
    kept even when its columns are text and it could not become arrays, so the checks
    that read files (PII) still run on it.
    """

    model: Classifier | None = None
    model_path: Path | None = None
    model_format: str = ""
    train: Dataset | None = None
    test: Dataset | None = None
    train_file: Path | None = None

    @property
    def eval_data(self) -> Dataset | None:
        """Held-out data when given, else the training data."""
        return self.test if self.test is not None else self.train

    def has(self, need: Need) -> bool:
        match need:
            case "model":
                return self.model is not None
            case "differentiable":
                return isinstance(self.model, Differentiable)
            case "train":
                return self.train is not None
            case "test":
                return self.test is not None
            case "data":
                return self.eval_data is not None
            case "model-file":
                return self.model_path is not None
            case "train-file":  # training data as arrays, or as a file that held text
                return self.train_file is not None or self.train is not None
            case "labels":
                data = self.eval_data
                return data is not None and data.y is not None
        return False

    def missing(self, needs: tuple[Need, ...]) -> list[Need]:
        return [n for n in needs if not self.has(n)]


@dataclass(kw_only=True)
class ScanContext:
    """Run-wide settings and services a check may use.

    ``rng`` is the only source of randomness a check may draw from; ``seed`` is there
    for libraries that take an int (scikit-learn's ``random_state``).
    """

    seed: int = 0
    profile: Literal["quick", "standard", "thorough"] = "quick"
    progress: ProgressSink | None = None
    options: dict[str, Any] = field(default_factory=dict)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)


@runtime_checkable
class Check(Protocol):
    """A scan plug-in. Class attributes describe it; ``run`` does the work."""

    name: ClassVar[str]
    title: ClassVar[str]
    owasp: ClassVar[tuple[str, ...]]
    atlas: ClassVar[tuple[str, ...]]
    needs: ClassVar[tuple[Need, ...]]

    def applies(self, target: Target) -> bool: ...

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]: ...


# Every module in bastion/scan/checks/ registers its checks on import.
CHECKS: Registry[type[Check]] = Registry("check", packages=("bastion.scan.checks",))
