"""DP-SGD through Opacus: the planner's noise meets the target, the accountant's ε is
reported, the trained network is plain (no Opacus wrapper), and impossible targets fail."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from bastion.data import Dataset
from bastion.defenses import build_hardener
from bastion.defenses.dp_training import DPSGD, choose_noise
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models.torch import TorchClassifier
from bastion.privacy.dp_planner import epsilon_for


@pytest.fixture(scope="module")
def tiny_train(small_train: Dataset) -> Dataset:
    assert small_train.y is not None
    return replace(small_train, x=small_train.x[:300], y=small_train.y[:300])


def test_meets_the_target_epsilon_and_returns_a_plain_network(
    plain_cnn: TorchClassifier, tiny_train: Dataset, small_train: Dataset,
) -> None:
    before = {k: v.clone() for k, v in plain_cnn.module.state_dict().items()}
    hardener = build_hardener("dp-sgd", {"target-epsilon": "2", "epochs": "2",
                                         "batch-size": "32", "delta": "1e-4"})

    result = hardener.apply(plain_cnn, tiny_train, val=small_train, seed=0)

    eps = result.metrics["epsilon"]
    assert 1.9 <= eps <= 2.0 + 1e-3
    assert [row["epoch"] for row in result.log] == [1.0, 2.0]
    assert result.module is not None
    assert set(result.module.state_dict()) == set(before)  # no Opacus "_module." prefix
    assert not result.module._forward_hooks and not any(
        hasattr(p, "grad_sample") for p in result.module.parameters())
    assert all(torch.equal(before[k], v) for k, v in plain_cnn.module.state_dict().items())
    assert any("PRV accountant" in note for note in result.notes)


def test_is_exactly_opacus_with_the_planned_noise(
    plain_cnn: TorchClassifier, tiny_train: Dataset, small_train: Dataset,
) -> None:
    """Oracle: the same seeds through Opacus by hand give the same weights and ε."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    from bastion.defenses._training import reset_parameters

    hardener = DPSGD(noise_multiplier=1.1, epochs=1, batch_size=50, lr=0.1, from_scratch=True)
    ours = hardener.apply(plain_cnn, tiny_train, val=small_train, seed=7)

    module = copy.deepcopy(plain_cnn.module)
    reset_parameters(module, 7)
    assert tiny_train.y is not None
    data = TensorDataset(torch.as_tensor(tiny_train.x), torch.as_tensor(tiny_train.y).long())
    loader = DataLoader(data, batch_size=50, generator=torch.Generator().manual_seed(7))
    engine = PrivacyEngine(accountant="prv")
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    module.train()
    private, dp_opt, dp_loader = engine.make_private(
        module=module, optimizer=opt, data_loader=loader, noise_multiplier=1.1,
        max_grad_norm=1.0, noise_generator=torch.Generator().manual_seed(8))
    for x, y in dp_loader:
        dp_opt.zero_grad()
        torch.nn.functional.cross_entropy(private(x), y).backward()
        dp_opt.step()

    assert ours.module is not None
    for p, q in zip(ours.module.parameters(), module.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert ours.metrics["epsilon"] == pytest.approx(engine.get_epsilon(ours.metrics["delta"]))
    # ... and the planner agrees with the accountant on what this noise buys.
    (plan,) = epsilon_for(n_samples=300, batch_size=50, epochs=1, delta=ours.metrics["delta"],
                          noise_multiplier=1.1, accountants=("prv",))
    assert ours.metrics["epsilon"] == pytest.approx(plan.epsilon, rel=0.02)


@pytest.mark.parametrize(("n", "epochs", "target", "message"), [
    (100, 50, 0.5, "max-noise-multiplier"),
    (100, 50, 1e-9, "cannot be met at any noise level"),
])
def test_an_unreachable_target_is_a_one_line_error(n: int, epochs: int, target: float,
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        choose_noise(n_samples=n, batch_size=32, epochs=epochs, delta=1e-4,
                     target_epsilon=target, accountant="rdp", max_noise_multiplier=10.0)


def test_a_reachable_target_is_planned_below_the_cap() -> None:
    sigma = choose_noise(n_samples=60000, batch_size=256, epochs=10, delta=1e-5,
                         target_epsilon=3.0, accountant="rdp", max_noise_multiplier=10.0)
    assert 0.5 < sigma < 2.0


def test_batch_norm_is_refused(tiny_train: Dataset) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    model = TorchClassifier(net, input_shape=(1, 8, 8))
    with pytest.raises(UnsupportedModelError, match="GroupNorm"):
        DPSGD(epochs=1).apply(model, tiny_train)
