"""Every registered check passes the contract suite on a small, complete target."""

from pathlib import Path

import numpy as np
import pytest

from bastion.data import Dataset
from bastion.scan import CHECKS, Target
from bastion.testing import check_check


@pytest.fixture(scope="module")
def make_target(tmp_path_factory: pytest.TempPathFactory):
    import torch
    from safetensors.torch import save_file

    from bastion.models import TorchClassifier

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((90, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 1).astype(np.int64) + (x[:, 2] > 0.7).astype(np.int64)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        torch.autograd.backward(loss)
        opt.step()
    path: Path = tmp_path_factory.mktemp("model") / "net.safetensors"
    save_file(net.state_dict(), str(path))
    names = tuple(f"f{i}" for i in range(4))

    def make() -> Target:
        model = TorchClassifier(net.eval(), input_shape=(4,), n_classes=3)
        return Target(
            model=model, model_path=path, model_format="safetensors",
            train=Dataset(x=x[:60], y=y[:60], kind="tabular", feature_names=names),
            test=Dataset(x=x[60:], y=y[60:], kind="tabular", feature_names=names),
        )

    return make


@pytest.mark.parametrize("name", CHECKS.names())
def test_check_passes_the_contract(name: str, make_target) -> None:
    check_check(name, CHECKS.get(name), make_target)


def test_the_suite_catches_a_check_that_lies_about_its_ids(make_target) -> None:
    from dataclasses import dataclass
    from typing import ClassVar

    from bastion.report import Finding, Severity

    @dataclass(frozen=True)
    class Liar:
        name: ClassVar[str] = "liar"
        title: ClassVar[str] = "lies"
        owasp: ClassVar[tuple[str, ...]] = ("ML01",)
        atlas: ClassVar[tuple[str, ...]] = ()
        needs: ClassVar[tuple[str, ...]] = ("model",)

        def applies(self, target: Target) -> bool:
            return target.model is not None

        def run(self, target: Target, ctx: object) -> list[Finding]:
            return [Finding(id="liar/x", check="liar", title="t", severity=Severity.LOW,
                            owasp=["ML05"])]

    with pytest.raises(AssertionError, match="undeclared OWASP"):
        check_check("liar", Liar, make_target)  # type: ignore[arg-type]
