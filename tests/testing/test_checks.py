"""Every registered check passes the contract suite; the suite catches what it should."""

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bastion.registry import Registry
from bastion.report import Finding, Severity
from bastion.scan import CHECKS, ScanContext, Target
from bastion.testing import check_check
from bastion.testing.checks import synthetic_targets


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """The suite's models are tiny and the CI box shared: extra threads only slow it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", CHECKS.names())
def test_check_passes_the_contract(name: str) -> None:
    check_check(CHECKS.get(name))


def test_synthetic_targets_are_complete_and_learnable(tmp_path: Path) -> None:
    targets = synthetic_targets(tmp_path)
    assert [t.train.kind for t in targets if t.train] == ["tabular", "image"]
    for t in targets:
        assert not t.missing(("model", "differentiable", "train", "test", "model-file", "labels"))
        assert t.model is not None and t.test is not None and t.test.y is not None
        accuracy = (t.model.predict_proba(t.test.x).argmax(axis=1) == t.test.y).mean()
        assert accuracy >= 0.9
        assert t.model_path is not None and t.model_path.is_file()


def test_without_torch_the_targets_use_a_numpy_model(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    tabular, image = synthetic_targets(tmp_path)
    for t in (tabular, image):
        assert t.model is not None and t.test is not None and t.test.y is not None
        assert type(t.model).__name__ == "_Softmax" and not t.has("differentiable")
        proba = t.model.predict_proba(t.test.x)
        assert proba.sum(axis=1) == pytest.approx(np.ones(len(proba)), abs=1e-5)
        assert (proba.argmax(axis=1) == t.test.y).mean() >= 0.9
        assert t.model.n_queries == len(t.test)


@dataclass(frozen=True, kw_only=True)
class _Honest:
    name: ClassVar[str] = "honest"
    title: ClassVar[str] = "honest"
    owasp: ClassVar[tuple[str, ...]] = ("ML01",)
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0015",)
    needs: ClassVar[tuple[str, ...]] = ("model", "test")
    owasp_used: str = "ML01"
    random_title: bool = False

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)  # type: ignore[arg-type]

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        title = str(np.random.default_rng().random()) if self.random_title else "t"
        return [Finding(id="honest/x", check="honest", title=title, severity=Severity.LOW,
                        owasp=[self.owasp_used])]


def _registered(cls: type, name: str | None = None) -> Registry[type]:
    registry: Registry[type] = Registry("check")
    registry.register(name or cls.name)(cls)  # type: ignore[attr-defined]
    return registry


def _variant(**overrides: object) -> type:
    """A subclass of the honest check with some behaviour changed."""
    return dataclass(frozen=True, kw_only=True)(type("Variant", (_Honest,), {
        "__annotations__": {k: type(v) for k, v in overrides.items()}, **overrides}))


def test_an_honest_check_passes() -> None:
    check_check(_Honest, registry=_registered(_Honest))


@pytest.mark.parametrize(
    ("cls", "registry", "needle"),
    [
        (_variant(owasp_used="ML05"), None, "undeclared OWASP"),
        (_variant(random_title=True), None, "not deterministic"),
        (_variant(atlas=("T0015",)), None, "ATLAS ids"),
        (_variant(needs=("gpu",)), None, "skip reason"),
        (_Honest, Registry("check"), "registered as nothing"),
        (_Honest, _registered(_Honest, "other"), r"registered as \['other'\]"),
    ],
)
def test_the_suite_catches_broken_checks(cls: type, registry: Registry[type] | None,
                                         needle: str) -> None:
    with pytest.raises(AssertionError, match=needle):
        check_check(cls, registry=registry if registry is not None else _registered(cls))
