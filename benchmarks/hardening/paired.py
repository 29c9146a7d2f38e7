"""bastion's PGD-AT fed ART's random numbers: a paired comparison with ART.

``bench.py`` seeds each library its own way, so a seed gives bastion and ART different
batch orders and PGD random starts, and robust accuracy after 8 epochs swings by several
points with those draws alone. Here bastion's two random sources are replaced by numpy
draws in the sequence ART's ``AdversarialTrainerMadryPGD`` makes them for the same
``np.random.seed``: each epoch's order by ``np.random.shuffle`` of one index array, each
batch's random start by a shuffle of the batch and ``np.random.uniform`` per chunk of
32 rows (ART's PGD batch). Everything else is bastion's own code and defaults (bf16
attack steps where the CPU has them, channels-last, validation and checkpoint rule), so
a seed's robust accuracy can be set beside ART's for the same seed in ``results.json``.

Run (ART is not needed; the results are compared with bench.py's ART column, and
``--out`` records them beside it, where bench.py's verdict reads them):
    .venv/bin/python benchmarks/hardening/paired.py --seeds 0 1 2 3 --out benchmarks/hardening
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

import bench  # the benchmark's models, data and ensemble scoring

import bastion.defenses._training as training
import bastion.defenses.adversarial_training as adversarial_training
from bastion.data import Dataset
from bastion.models.torch import TorchClassifier

ART_PGD_BATCH = 32


def _numpy_like_art(n_train: int) -> dict[str, np.ndarray]:
    """Route bastion's batch order and random starts through numpy, as ART draws them;
    the returned index array is the one ART shuffles (reset it for each training run)."""
    order = {"index": np.arange(n_train)}
    real_randperm = torch.randperm

    def randperm(n: int, *args: object, **kwargs: object) -> torch.Tensor:
        if n != n_train:  # only the epoch order; anything else keeps torch's draw
            return real_randperm(n, *args, **kwargs)  # type: ignore[call-overload]
        np.random.shuffle(order["index"])  # ART shuffles one index array every epoch
        return torch.as_tensor(order["index"].copy())

    def random_start(x: torch.Tensor, eps: float, norm: object,
                     generator: torch.Generator) -> torch.Tensor:
        rows = np.arange(len(x))
        np.random.shuffle(rows)
        width = int(np.prod(x.shape[1:]))
        noise = np.empty((len(x), width), dtype=np.float32)
        for start in range(0, len(x), ART_PGD_BATCH):
            chunk = rows[start : start + ART_PGD_BATCH]
            noise[chunk] = np.random.uniform(-eps, eps, (len(chunk), width))
        return torch.as_tensor(noise).reshape(x.shape)

    training.torch.randperm = randperm  # type: ignore[assignment]
    adversarial_training.random_in_ball = random_start  # type: ignore[assignment]
    return order


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--n-eval", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None,
                        help="Record each seed in this folder's results.json (bench.py's).")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    factory, train, test, eps = bench._problems(1500)["cnn32 (3x32x32, generated)"]
    init = bench._init(factory, 0, train, 2)
    order = _numpy_like_art(len(train))
    val = Dataset(x=train.x[:128], y=train.y[:128])  # type: ignore[index]
    for seed in args.seeds:
        np.random.seed(seed)  # as bench.py seeds ART
        order["index"] = np.arange(len(train))  # as ART's fit starts
        hardener = adversarial_training.PGDAdversarialTraining(
            eps=eps, steps=10, epochs=8, batch_size=128, lr=1e-3, warmup_epochs=0,
            n_val=128, val_steps=10)
        model = TorchClassifier(copy.deepcopy(init), input_shape=train.sample_shape)
        result = hardener.apply(model, train, val=val, seed=seed)
        assert result.module is not None
        clean, robust = bench._robust(result.module, test, eps, args.n_eval)
        print(json.dumps({"seed": seed, "clean": clean, "robust": robust}), flush=True)
        if args.out is not None:
            _record(args.out, seed, robust)


def _record(out: Path, seed: int, robust: float) -> None:
    """Add one seed to the 3x32x32 row of ``out/results.json`` and re-render RESULTS.md."""
    path = out / "results.json"
    res = json.loads(path.read_text())
    row = next(r for r in res["pgd_at"] if r["model"].startswith("cnn32"))
    row.setdefault("bastion_paired", {})[str(seed)] = robust
    path.write_text(json.dumps(res, indent=2) + "\n")
    (out / "RESULTS.md").write_text(bench._markdown(res, res.get("command", "")) + "\n")


if __name__ == "__main__":
    main()
