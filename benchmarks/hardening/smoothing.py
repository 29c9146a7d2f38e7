"""Randomized-smoothing benchmark: certified accuracy and certification time.

Run from the repository root::

    .venv/bin/python benchmarks/hardening/smoothing.py --out benchmarks/hardening

For each model and noise level ``sigma`` a copy of the normally trained model is
fine-tuned on Gaussian-noised inputs (``bastion.defenses.smoothing.RandomizedSmoothing``)
and the first test samples are certified with CERTIFY (Cohen et al. 2019): ``n0``
selection draws, ``n`` estimation draws, failure probability ``alpha``. Reported per row:
certified accuracy at L2 radii 0 / 0.25 / 0.5 / 0.75 / 1.0 (correct *and* certified at
radius >= r), abstentions, and mean certification time per sample. A row for the same
model smoothed without noise training shows what the training adds.

Models: the demo digits CNN (1x8x8, ``bastion.demo.digits_cnn``) and a small 3x32x32 CNN
on generated data (class templates plus noise).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bastion.data import Dataset
from bastion.data.demo import demo_digits
from bastion.defenses import build_hardener
from bastion.defenses.smoothing import GaussianNoise, SmoothedClassifier, noisy_accuracy
from bastion.models import TorchClassifier

HERE = Path(__file__).parent
RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Case:
    name: str
    model: TorchClassifier
    train: Dataset
    test: Dataset


def digits_case() -> Case:
    from bastion.demo import digits_cnn

    train, test = demo_digits(seed=0)
    assert train.y is not None
    torch.manual_seed(0)
    module = digits_cnn()
    _fit(module, torch.as_tensor(train.x), torch.as_tensor(train.y), epochs=12)
    return Case("digits CNN 1x8x8", TorchClassifier(module, input_shape=(1, 8, 8)), train, test)


def cifar_case(n_test: int) -> Case:
    """Generated 3x32x32 images, class templates plus uniform noise (as in the evasion
    benchmark), and a small CNN: certification draws n forward passes per sample on CPU."""
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    n_train = 3000
    templates = torch.rand(10, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (n_train + n_test,), generator=gen)
    x = (0.5 * templates[y] + 0.5 * torch.rand(len(y), 3, 32, 32, generator=gen)).clamp(0, 1)
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    _fit(module, x[:n_train], y[:n_train], epochs=3)
    train = Dataset(x=x[:n_train].numpy(), y=y[:n_train].numpy(), kind="image")
    test = Dataset(x=x[n_train:].numpy(), y=y[n_train:].numpy(), kind="image")
    return Case("generated-data CNN 3x32x32", TorchClassifier(module, input_shape=(3, 32, 32)),
                train, test)


def _fit(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int) -> None:
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    module.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(x[idx]), y[idx]).backward()
            opt.step()
    module.eval()


def certify_row(case: Case, base: TorchClassifier, *, sigma: float, trained: bool,
                n_samples: int, n0: int, n: int, alpha: float, train_s: float) -> dict[str, Any]:
    x, y = case.test.x[:n_samples], np.asarray(case.test.y)[:n_samples]
    smooth = SmoothedClassifier(base, sigma=sigma, n0=n0, n=n, alpha=alpha, batch_size=2000)
    start = time.perf_counter()
    cert = smooth.certify(x)
    wall = time.perf_counter() - start
    xt, yt = torch.as_tensor(case.test.x), torch.as_tensor(case.test.y)
    return {
        "model": case.name, "sigma": sigma, "noise_trained": trained, "n_samples": n_samples,
        "n0": n0, "n": n, "alpha": alpha,
        "clean_accuracy": float(np.mean(base.predict_proba(case.test.x).argmax(1) == case.test.y)),
        "noisy_accuracy": noisy_accuracy(GaussianNoise(
            base, sigma=sigma, generator=torch.Generator().manual_seed(1)), xt, yt),
        "certified_accuracy": dict(zip(map(str, RADII),
                                       cert.certified_accuracy(y, RADII).tolist(), strict=True)),
        "abstain_rate": float(np.mean(cert.abstained)),
        "median_radius_correct": float(np.median(cert.radius[cert.prediction == y]))
        if bool((cert.prediction == y).any()) else 0.0,
        "certify_s_per_sample": float(np.mean(cert.time_s)), "certify_wall_s": wall,
        "noise_training_s": train_s,
    }


def run(case: Case, sigmas: list[float], *, n_samples: int, n0: int, n: int, alpha: float,
        epochs: int, plain: bool) -> list[dict[str, Any]]:
    rows = []
    for sigma in sigmas:
        start = time.perf_counter()
        result = build_hardener("smoothing", {"sigma": sigma, "epochs": epochs, "n0": n0,
                                              "n": n, "alpha": alpha}).apply(
            case.model, case.train, seed=0)
        train_s = time.perf_counter() - start
        assert isinstance(result.model, SmoothedClassifier)
        base = result.model.base
        assert isinstance(base, TorchClassifier)
        runs = [(base, True, train_s)] + ([(case.model, False, 0.0)] if plain else [])
        for model, trained, took in runs:
            row = certify_row(case, model, sigma=sigma, trained=trained, n_samples=n_samples,
                              n0=n0, n=n, alpha=alpha, train_s=took)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def max_radius(row: dict[str, Any]) -> float:
    """The largest radius CERTIFY can give: all n draws agree, pA = alpha ** (1 / n)."""
    from scipy.stats import norm

    return float(row["sigma"] * norm.ppf(row["alpha"] ** (1 / row["n"])))


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    head = ("| model | sigma | noise-trained | samples | n0 / n / alpha | clean acc | noisy acc | "
            + " | ".join(f"cert. acc r={r}" for r in RADII)
            + " | abstain | max radius | certify s/sample |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        certs = " | ".join(f"{r['certified_accuracy'][str(rad)]:.3f}" for rad in RADII)
        lines.append(
            f"| {r['model']} | {r['sigma']} | {'yes' if r['noise_trained'] else 'no'} | "
            f"{r['n_samples']} | {r['n0']} / {r['n']:,} / {r['alpha']} | "
            f"{r['clean_accuracy']:.3f} | {r['noisy_accuracy']:.3f} | {certs} | "
            f"{r['abstain_rate']:.3f} | {max_radius(r):.2f} | {r['certify_s_per_sample']:.2f} |")
    return "\n".join([
        "# Hardening: randomized smoothing (certified L2 robustness)", "",
        "```sh", command, "```", "",
        f"Machine: {platform.machine()}, CPython {platform.python_version()}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s), CPU only. The machine "
        "was shared with other jobs (2 cores, load above the core count), so times are upper "
        "bounds.", "",
        "CERTIFY as in Cohen et al. (2019): the top class is guessed from n0 noisy draws and "
        "its probability lower-bounded from n fresh draws (one-sided Clopper-Pearson at "
        "level 1 - alpha); radius = sigma * Phi^-1(pA), abstain when pA <= 1/2. Certified "
        "accuracy at r counts test samples classified correctly and certified at radius "
        ">= r. Noise training fine-tunes a copy of the normally trained model on "
        "Gaussian-noised inputs at the same sigma; the rows without it smooth the "
        "normally trained model as is. \"max radius\" is the largest radius CERTIFY can "
        "return with these n and alpha (every draw agreeing): certified accuracy beyond it "
        "is 0 by construction. Times are wall seconds per sample on one thread.", "",
        *lines, "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--models", default="digits,cifar")
    parser.add_argument("--sigmas", default="0.25,0.5")
    parser.add_argument("--n-samples", type=int, default=100)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cifar-n-samples", type=int, default=30)
    parser.add_argument("--cifar-n", type=int, default=10_000)
    parser.add_argument("--no-plain", action="store_true",
                        help="skip the rows for the model smoothed without noise training")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    rows: list[dict[str, Any]] = []
    models = args.models.split(",")
    if "digits" in models:
        rows += run(digits_case(), sigmas, n_samples=args.n_samples, n0=args.n0, n=args.n,
                    alpha=args.alpha, epochs=args.epochs, plain=not args.no_plain)
    if "cifar" in models:
        rows += run(cifar_case(args.cifar_n_samples), sigmas, n_samples=args.cifar_n_samples,
                    n0=args.n0, n=args.cifar_n, alpha=args.alpha, epochs=max(1, args.epochs // 4),
                    plain=not args.no_plain)
    command = "OMP_NUM_THREADS=1 .venv/bin/python " + " ".join(sys.argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "RESULTS-smoothing.md").write_text(markdown(rows, command), encoding="utf-8")
    json_dir = HERE.parent / "out" / "hardening"
    json_dir.mkdir(parents=True, exist_ok=True)
    (json_dir / "smoothing.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
