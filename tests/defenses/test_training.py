"""The shared training loop: which checkpoint is kept, patience, stop requests, seeding."""

from __future__ import annotations

import copy

import pytest
import torch

from bastion.defenses._training import Batches, EpochScore, fit, make_optimizer
from bastion.errors import ConfigError
from bastion.models.torch import TorchClassifier


def _setup(seed: int = 0) -> tuple[TorchClassifier, Batches, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = TorchClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)),
                          input_shape=(4,))
    gen = torch.Generator().manual_seed(1)
    data = Batches(torch.rand(40, 4, generator=gen), torch.randint(0, 3, (40,), generator=gen))
    return net, data, make_optimizer(list(net.module.parameters()), "sgd", 0.5, 0.0)


def _ce(n: TorchClassifier, x: torch.Tensor, y: torch.Tensor, _t: float) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(n.logits(x), y)


@pytest.mark.parametrize(("scores", "n_scored", "patience", "stop_at", "epochs_run", "kept"), [
    ([0.5, 0.7, 0.6, 0.4, 0.3], None, 2, None, 4, 1),   # no gain for 2 epochs after the best
    ([0.5, 0.7, 0.6, 0.4, 0.3], None, None, None, 5, 1),  # no patience: all epochs, best kept
    ([0.5, 0.7, 0.9, 0.4, 0.3], None, None, 3, 4, 2),   # a stop request (catastrophic overfit)
    ([0.1, 0.2, 0.3, 0.4, 0.5], None, 1, None, 5, 4),   # always improving: last weights stay
    # one-standard-error rule: sqrt(0.7 * 0.3 / 128) = 0.041, so 0.68 ties with 0.70
    ([0.5, 0.7, 0.69, 0.68, 0.68], 128, None, None, 5, 4),
    # ... but with 10,000 validation samples (SE 0.005) it does not
    ([0.5, 0.7, 0.69, 0.68, 0.68], 10_000, None, None, 5, 1),
    # the latest epoch within the tie wins even when it is neither the best nor the last
    ([0.5, 0.8, 0.78, 0.6, 0.6], 128, None, None, 5, 2),
    # a later, better epoch raises the bar past an earlier near-tie
    ([0.5, 0.7, 0.68, 0.9, 0.6], 128, None, None, 5, 3),
])
def test_checkpoint_choice(scores: list[float], n_scored: int | None, patience: int | None,
                           stop_at: int | None, epochs_run: int, kept: int) -> None:
    net, data, opt = _setup()
    snapshots: list[dict[str, torch.Tensor]] = []

    def on_epoch(epoch: int, _loss: float) -> EpochScore:
        snapshots.append(copy.deepcopy(net.module.state_dict()))
        return EpochScore({"score": scores[epoch]}, scores[epoch],
                          "stop requested" if epoch == stop_at else None, n_scored)

    log, notes = fit(net, data, loss=_ce, epochs=5, batch_size=8, optimizer=opt,
                     generator=torch.Generator().manual_seed(0), on_epoch=on_epoch,
                     patience=patience)

    assert len(log) == epochs_run and [r["epoch"] for r in log] == list(range(1, epochs_run + 1))
    for key, value in net.module.state_dict().items():
        torch.testing.assert_close(value, snapshots[kept][key])
    assert ("stop requested" in notes) == (stop_at is not None)
    restored = [n for n in notes if n.startswith("restored the checkpoint")]
    assert restored == ([f"restored the checkpoint of epoch {kept + 1} of {epochs_run} "
                         f"(validation score {scores[kept]:.3f}; the last epoch's "
                         f"{scores[epochs_run - 1]:.3f} was further below the best than its "
                         "noise)"]
                        if kept != epochs_run - 1 else [])


def test_same_generator_same_weights() -> None:
    def run() -> list[torch.Tensor]:
        net, data, opt = _setup()
        fit(net, data, loss=_ce, epochs=2, batch_size=8, optimizer=opt,
            generator=torch.Generator().manual_seed(3), on_epoch=lambda e, v: EpochScore({}))
        return [p.detach().clone() for p in net.module.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(run(), run(), strict=True))


@pytest.mark.parametrize(("epochs", "batch"), [(0, 8), (1, 0)])
def test_empty_schedules_are_refused(epochs: int, batch: int) -> None:
    net, data, opt = _setup()
    with pytest.raises(ConfigError, match="at least 1"):
        fit(net, data, loss=_ce, epochs=epochs, batch_size=batch, optimizer=opt,
            generator=torch.Generator(), on_epoch=lambda e, v: EpochScore({}))


def test_unknown_optimizer_and_bad_rate_are_refused() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ConfigError, match="sgd or adam"):
        make_optimizer(params, "rmsprop", 0.1, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="positive"):
        make_optimizer(params, "sgd", 0.0, 0.0)
