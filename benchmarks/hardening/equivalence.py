"""Is bastion's PGD-AT the same computation as ART's AdversarialTrainerMadryPGD?

Both sides train the benchmark's 3x32x32 CNN from the same weights with the same batch
order (bastion's seeded permutation, handed to ART's epoch shuffle) and without the PGD
random start (ART ``num_random_init=0``; bastion's start replaced by zeros), so nothing
random is left. The script prints the largest weight difference after ``--batches``
optimiser steps: float rounding only (~1e-8) when the two compute the same thing. With
``--epochs`` it trains that long instead and also scores both under the ensemble attack:
sign-of-gradient steps amplify rounding over many steps, so longer runs drift apart and
show how far identical recipes land from each other.

Run (ART lives only in benchmarks/.venv-hardening, see README.md):
    benchmarks/.venv-hardening/bin/python benchmarks/hardening/equivalence.py --batches 2
    benchmarks/.venv-hardening/bin/python benchmarks/hardening/equivalence.py --epochs 8
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

import bench  # the benchmark's models, data and ensemble scoring

import bastion.defenses.adversarial_training as adversarial_training
from bastion.data import Dataset
from bastion.models.torch import TorchClassifier

BATCH = 128


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2, help="Optimiser steps to compare.")
    parser.add_argument("--epochs", type=int, default=None,
                        help="Train this many epochs instead, then score both.")
    parser.add_argument("--n-eval", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    factory, train, test, eps = bench._problems(1500)["cnn32 (3x32x32, generated)"]
    init = bench._init(factory, 0, train, 2)
    epochs = args.epochs or 1
    if args.epochs is None:
        n = args.batches * BATCH
        train = Dataset(x=train.x[:n], y=train.y[:n], kind="image")  # type: ignore[index]
    n = len(train)

    adversarial_training.random_in_ball = (  # type: ignore[assignment]
        lambda x, eps, norm, generator: torch.zeros_like(x))
    ours = TorchClassifier(copy.deepcopy(init), input_shape=train.sample_shape)
    hardener = adversarial_training.PGDAdversarialTraining(
        eps=eps, steps=10, epochs=epochs, batch_size=BATCH, lr=1e-3, warmup_epochs=0,
        n_val=BATCH, val_steps=10, attack_precision="fp32", channels_last=False)
    val = Dataset(x=train.x[:BATCH], y=train.y[:BATCH])  # type: ignore[index]
    result = hardener.apply(ours, train, val=val, seed=0)
    assert result.module is not None

    # bastion's fit draws each epoch's order as torch.randperm(n, generator seeded 0)
    order = torch.Generator().manual_seed(0)
    real_shuffle = np.random.shuffle

    def same_order(values: np.ndarray) -> None:
        if len(values) == n:  # the epoch order; the per-batch shuffle changes nothing here
            values[:] = torch.randperm(n, generator=order).numpy()

    np.random.shuffle = same_order  # type: ignore[assignment]
    try:
        theirs = _art(copy.deepcopy(init), train, eps, epochs)
    finally:
        np.random.shuffle = real_shuffle
    diff = max((a - b).abs().max().item()
               for a, b in zip(result.module.parameters(), theirs.parameters(), strict=True))
    print(f"{n} samples, {epochs} epoch(s): largest weight difference {diff:.2e}")
    if args.epochs is not None:
        for side, module in (("bastion", result.module), ("ART", theirs)):
            clean, robust = bench._robust(module, test, eps, args.n_eval)
            print(f"{side}: clean {clean:.1%}, robust {robust:.1%} (ensemble, "
                  f"{args.n_eval} samples)")


def _art(module: torch.nn.Module, train: Dataset, eps: float, epochs: int) -> torch.nn.Module:
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(model=module, loss=torch.nn.CrossEntropyLoss(),
                            optimizer=torch.optim.Adam(module.parameters(), lr=1e-3),
                            input_shape=train.sample_shape, nb_classes=10,
                            clip_values=(0.0, 1.0), device_type="cpu")
    AdversarialTrainerMadryPGD(clf, nb_epochs=epochs, batch_size=BATCH, eps=eps,
                               eps_step=2.5 * eps / 10, max_iter=10,
                               num_random_init=0).fit(train.x, train.y)
    return module


if __name__ == "__main__":
    main()
