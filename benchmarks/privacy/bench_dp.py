"""Membership leakage of a DP-SGD-trained target (Opacus) at ε = 1 and ε = 8 against
the same model trained without DP: the attacks' advantage should shrink with ε.

Run from the repository root (needs ``opacus``)::

    .venv/bin/python benchmarks/privacy/bench_dp.py --out benchmarks/privacy

Target: a one-hidden-layer MLP (256 units) on generated 3-class data with 10 % flipped
labels, 1,000 members and 1,000 non-members, 60 epochs of batch-100 Adam; DP variants
clip per-sample gradients at norm 1 and add the noise Opacus plans for (ε, δ = 1e-4).
bastion's reference models are trained with the same recipe, DP included, as LiRA and
RMIA assume. Writes ``dp_results.json`` and ``RESULTS_DP.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import make_classification

from bastion.attacks.inference import RMIA, LiRA, LossThreshold, audit_membership
from bastion.data.dataset import Dataset
from bastion.models.torch import TorchClassifier

EPOCHS = 60
DELTA = 1e-4


@dataclass(frozen=True, kw_only=True)
class MLPRecipe:
    """Train the benchmark MLP, with Opacus DP-SGD at ``epsilon`` when it is given."""

    epsilon: float | None

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> TorchClassifier:
        from torch.utils.data import DataLoader, TensorDataset

        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(),
                                      torch.nn.Linear(256, 3))
        data = TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
        loader = DataLoader(data, batch_size=100, shuffle=True, generator=gen)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        module: torch.nn.Module = net
        if self.epsilon is not None:
            from opacus import PrivacyEngine

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                engine = PrivacyEngine(accountant="rdp", secure_mode=False)
                module, opt, loader = engine.make_private_with_epsilon(
                    module=net, optimizer=opt, data_loader=loader, noise_generator=gen,
                    target_epsilon=self.epsilon, target_delta=DELTA, epochs=EPOCHS,
                    max_grad_norm=1.0)
        for _ in range(EPOCHS):
            for xb, yb in loader:
                if len(xb) == 0:
                    continue
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(module(xb), yb)
                torch.autograd.backward(loss)
                opt.step()
        return TorchClassifier(net.eval(), input_shape=(x.shape[1],), n_classes=3,
                               bounds=(-30.0, 30.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/privacy"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-references", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_classes=3,
                               n_clusters_per_class=1, flip_y=0.1, random_state=args.seed)
    x = x.astype(np.float32)
    members, nonmembers = Dataset(x=x[:1000], y=y[:1000]), Dataset(x=x[1000:], y=y[1000:])
    rows: list[dict[str, Any]] = []
    for eps in (None, 8.0, 1.0):
        recipe = MLPRecipe(epsilon=eps)
        started = time.perf_counter()
        target = recipe.fit(members.x, np.asarray(members.y), seed=args.seed + 10_000)
        fit_s = time.perf_counter() - started
        acc = [float((target.predict_proba(d.x).argmax(1) == d.y).mean())
               for d in (members, nonmembers)]
        audit = audit_membership(
            target, members, nonmembers, recipe=recipe, n_references=args.n_references,
            seed=args.seed, attacks=[LossThreshold(), LiRA(), LiRA(online=False), RMIA(),
                                     RMIA(online=False)])
        for r in audit.results:
            rows.append({"epsilon": eps, "attack": r.attack, "auc": r.auc,
                         "tpr_at_0.1pct": r.tpr_at_fpr[0.001], "tpr_at_1pct": r.tpr_at_fpr[0.01],
                         "train_acc": acc[0], "test_acc": acc[1], "target_fit_s": fit_s})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dp_results.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "# Membership leakage with and without DP-SGD (Opacus)",
        "",
        "Command: `.venv/bin/python benchmarks/privacy/bench_dp.py --out "
        "benchmarks/privacy` (one thread). 1,000 members vs 1,000 non-members "
        f"(0.1 % FPR = one false positive); {args.n_references} reference models per "
        f"target, trained with the target's recipe; δ = {DELTA:g}.",
        "",
        "| ε | train / test acc. | attack | AUC | TPR @ 0.1 % FPR | TPR @ 1 % FPR |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        eps = "no DP" if r["epsilon"] is None else f"{r['epsilon']:g}"
        lines.append(f"| {eps} | {r['train_acc']:.2f} / {r['test_acc']:.2f} | {r['attack']} | "
                     f"{r['auc']:.3f} | {r['tpr_at_0.1pct']:.1%} | {r['tpr_at_1pct']:.1%} |")
    (args.out / "RESULTS_DP.md").write_text("\n".join([*lines, ""]))


if __name__ == "__main__":
    main()
