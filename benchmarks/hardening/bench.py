"""Hardening benchmark: bastion's PGD-AT against ART's AdversarialTrainerMadryPGD, and
bastion's DP-SGD against calling Opacus directly.

Both sides of each comparison start from the same initial weights, see the same data in
batches of the same size with the same optimiser, and run in this one process on one
thread, alternating, so a busy machine slows both alike. Robust accuracy is measured
afterwards with bastion's AutoAttack-style ensemble on the same held-out samples, in fp32.

PGD-AT runs bastion twice: with its default ``attack-precision=auto`` (bf16 attack steps
where the CPU has native bf16) and with ``attack-precision=fp32``; ART runs fp32.

Run (ART lives only in benchmarks/.venv-hardening, see README.md):
    benchmarks/.venv-hardening/bin/python benchmarks/hardening/bench.py --out benchmarks/hardening
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bastion.attacks.evasion.autoattack import AutoAttack
from bastion.data import Dataset
from bastion.data.demo import demo_digits
from bastion.defenses.adversarial_training import (
    AttackPrecision,
    PGDAdversarialTraining,
    bf16_is_fast,
)
from bastion.defenses.dp_training import DPSGD
from bastion.demo import digits_cnn
from bastion.models.torch import TorchClassifier


def cnn32() -> nn.Module:
    """A small CNN for 3x32x32 inputs (the benchmark's second architecture)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def generated32(n_train: int, n_test: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """10 classes of 3x32x32 images: a fixed random pattern per class, half noise."""
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.rand(10, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (n_train + n_test,), generator=gen)
    noise = torch.rand(len(y), 3, 32, 32, generator=gen)
    x = (0.5 * patterns[y] + 0.5 * noise).numpy().astype(np.float32)
    labels = y.numpy()
    return (Dataset(x=x[:n_train], y=labels[:n_train], kind="image"),
            Dataset(x=x[n_train:], y=labels[n_train:], kind="image"))


def _problems(n32: int) -> dict[str, tuple[Callable[[], nn.Module], Dataset, Dataset, float]]:
    train, test = demo_digits(seed=0)
    train32, test32 = generated32(n32, 200)
    return {"digits-cnn (1x8x8)": (digits_cnn, train, test, 0.1),
            "cnn32 (3x32x32, generated)": (cnn32, train32, test32, 8 / 255)}


def _init(factory: Callable[[], nn.Module], seed: int, train: Dataset,
          epochs: int) -> nn.Module:
    """The shared starting point: seeded weights trained normally for ``epochs``."""
    torch.manual_seed(seed)
    module = factory()
    x, y = torch.as_tensor(train.x), torch.as_tensor(train.y).long()
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(module(x[idx]), y[idx]).backward()
            opt.step()
    return module


def _robust(module: nn.Module, test: Dataset, eps: float, n: int) -> tuple[float, float]:
    """Clean accuracy and robust accuracy under the AutoAttack-style ensemble."""
    model = TorchClassifier(module.eval(), input_shape=test.sample_shape)
    x, y = test.x[:n], test.y[:n]  # type: ignore[index]
    clean = float((model.predict_proba(x).argmax(1) == y).mean())
    result = AutoAttack(eps=eps)(model, x, y, generator=torch.Generator().manual_seed(0))
    return clean, result.robust_accuracy


def _art_pgd_at(module: nn.Module, train: Dataset, eps: float, steps: int, epochs: int,
                batch: int, lr: float, seed: int) -> nn.Module:
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(model=module, loss=nn.CrossEntropyLoss(),
                            optimizer=torch.optim.Adam(module.parameters(), lr=lr),
                            input_shape=train.sample_shape, nb_classes=10,
                            clip_values=(0.0, 1.0), device_type="cpu")
    trainer = AdversarialTrainerMadryPGD(clf, nb_epochs=epochs, batch_size=batch, eps=eps,
                                         eps_step=2.5 * eps / steps, max_iter=steps,
                                         num_random_init=1)
    np.random.seed(seed)  # ART draws its batch order and random starts from numpy
    torch.manual_seed(seed)
    trainer.fit(train.x, train.y)
    return module


def _bastion_pgd_at(module: nn.Module, train: Dataset, eps: float, steps: int, epochs: int,
                    batch: int, lr: float, n_val: int, precision: AttackPrecision,
                    seed: int) -> nn.Module:
    model = TorchClassifier(module, input_shape=train.sample_shape)
    hardener = PGDAdversarialTraining(eps=eps, steps=steps, epochs=epochs, batch_size=batch,
                                      lr=lr, warmup_epochs=0, n_val=n_val, val_steps=steps,
                                      attack_precision=precision)
    # A held-out split would give bastion fewer training samples than ART: validate on
    # a separate slice of the training data instead, so both train on every sample.
    val = Dataset(x=train.x[:n_val], y=train.y[:n_val])  # type: ignore[index]
    result = hardener.apply(model, train, val=val, seed=seed)
    assert result.module is not None
    return result.module


# Each side of the PGD-AT comparison: bastion's attack precision, or None for ART.
AT_SIDES: dict[str, AttackPrecision | None] = {"bastion": "auto", "bastion_fp32": "fp32",
                                               "art": None}


def _train_side(side: str, module: nn.Module, data: Dataset, epochs: int, eps: float,
                args: argparse.Namespace, seed: int) -> nn.Module:
    """Train one side; ``seed`` sets its batch order and PGD random starts."""
    precision = AT_SIDES[side]
    if precision is not None:
        return _bastion_pgd_at(module, data, eps, args.steps, epochs, 128, 1e-3, args.n_val,
                               precision, seed)
    return _art_pgd_at(module, data, eps, args.steps, epochs, 128, 1e-3, seed)


def _same_setting(row: dict[str, Any], args: argparse.Namespace, eps: float,
                  n_train: int, n_eval: int) -> bool:
    return (row.get("eps") == eps and row.get("steps") == args.steps
            and row.get("epochs") == args.epochs and row.get("n_train") == n_train
            and row.get("n_eval", min(args.n_eval, n_eval)) == min(args.n_eval, n_eval)
            and all("clean_per_seed" in row[side] for side in AT_SIDES))


def _earlier_runs(row: dict[str, Any] | None) -> tuple[dict[str, list[tuple[float, float]]],
                                                        dict[str, list[tuple[float, float]]]]:
    """The times and (clean, robust) scores of a results row's seeds, to resume from."""
    times: dict[str, list[tuple[float, float]]] = {side: [] for side in AT_SIDES}
    scores: dict[str, list[tuple[float, float]]] = {side: [] for side in AT_SIDES}
    if row is None:
        return times, scores
    for side in AT_SIDES:
        times[side].append((row[side]["epoch_s"], row[side]["epoch_cpu_s"]))
        scores[side] = list(zip(row[side]["clean_per_seed"], row[side]["robust_per_seed"],
                                strict=True))
    return times, scores


def pgd_at(args: argparse.Namespace,
           earlier: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model; with ``--resume``, the seeds of ``earlier`` rows made with the
    same settings are kept and only the missing ones up to ``--seeds`` are run."""
    rows = []
    sides = tuple(AT_SIDES)
    for name, (factory, train, test, eps) in _problems(args.n32).items():
        if args.models and not any(name.startswith(m) for m in args.models):
            continue
        init = _init(factory, 0, train, args.pretrain)
        warm = Dataset(x=train.x[:256], y=train.y[:256])  # type: ignore[index]
        for side in sides:  # imports and first-call costs stay out of the timing
            _train_side(side, copy.deepcopy(init), warm, 1, eps, args, 0)
        before = earlier.get(name)
        if not (args.resume and before
                and _same_setting(before, args, eps, len(train), len(test))):
            before = None
        times, scores = _earlier_runs(before)
        # Robust accuracy after a few epochs on little data swings by several points with
        # the batch order and random starts alone, so every side trains once per seed
        # and is judged on the mean; each run is also a timing repeat.
        for seed in range(args.seeds):
            for side in sides:
                if seed < len(scores[side]) or (side == "bastion_fp32"
                                                and seed >= args.fp32_seeds):
                    continue  # resumed, or fp32 beyond the seeds asked for it
                module = copy.deepcopy(init)
                wall, cpu = time.perf_counter(), time.process_time()
                trained = _train_side(side, module, train, args.epochs, eps, args, seed)
                times[side].append(((time.perf_counter() - wall) / args.epochs,
                                    (time.process_time() - cpu) / args.epochs))
                scores[side].append(_robust(trained, test, eps, args.n_eval))
                print(json.dumps({"model": name, "seed": seed, "side": side,
                                  "clean_robust": scores[side][-1]}), flush=True)
        probe = TorchClassifier(copy.deepcopy(init), input_shape=train.sample_shape)
        row: dict[str, Any] = {"model": name, "eps": eps, "steps": args.steps,
                               "epochs": args.epochs, "n_train": len(train),
                               "n_eval": min(args.n_eval, len(test)), "seeds": args.seeds}
        for side in sides:
            clean, robust = (list(v) for v in zip(*scores[side], strict=True))
            setting = AT_SIDES[side]
            precision = "fp32" if setting is None else PGDAdversarialTraining(
                attack_precision=setting).precision_for(probe)
            row[side] = {"epoch_s": min(w for w, _ in times[side]),
                         "epoch_cpu_s": min(c for _, c in times[side]),
                         "clean": float(np.mean(clean)), "robust": float(np.mean(robust)),
                         "robust_sd": float(np.std(robust, ddof=1)) if len(robust) > 1 else 0.0,
                         "robust_per_seed": robust, "clean_per_seed": clean,
                         "attack_precision": precision}
        for side in ("bastion", "bastion_fp32"):
            suffix = side.removeprefix("bastion")
            row[f"ratio{suffix}"] = row[side]["epoch_s"] / row["art"]["epoch_s"]
            row[f"cpu_ratio{suffix}"] = row[side]["epoch_cpu_s"] / row["art"]["epoch_cpu_s"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _opacus_direct(module: nn.Module, train: Dataset, sigma: float, epochs: int,
                   batch: int, lr: float, delta: float) -> tuple[nn.Module, float]:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.as_tensor(train.x), torch.as_tensor(train.y).long())
    loader = DataLoader(data, batch_size=batch, generator=torch.Generator().manual_seed(0))
    engine = PrivacyEngine(accountant="prv")
    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
    module.train()
    private, dp_opt, dp_loader = engine.make_private(
        module=module, optimizer=opt, data_loader=loader, noise_multiplier=sigma,
        max_grad_norm=1.0, noise_generator=torch.Generator().manual_seed(1))
    for _ in range(epochs):
        for x, y in dp_loader:
            dp_opt.zero_grad()
            nn.functional.cross_entropy(private(x), y).backward()
            dp_opt.step()
    return module, float(engine.get_epsilon(delta))


def dp_sgd(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for name, (factory, train, test, _) in _problems(args.n32).items():
        init = _init(factory, 0, train, 0)  # DP-SGD trains from scratch
        delta = 1.0 / (10 * len(train))
        sigma = 1.0
        # bastion without a separate validation set would hold out 10 %; give it a
        # separate one so both train on the same samples.
        val = Dataset(x=test.x, y=test.y)
        times: dict[str, list[tuple[float, float]]] = {"bastion": [], "opacus": []}
        eps: dict[str, float] = {}
        accuracy: dict[str, float] = {}
        for _ in range(args.dp_repeats):
            for side in ("bastion", "opacus"):
                module = copy.deepcopy(init)
                wall, cpu = time.perf_counter(), time.process_time()
                if side == "bastion":
                    hardener = DPSGD(noise_multiplier=sigma, epochs=args.dp_epochs,
                                     batch_size=64, lr=0.05, delta=delta, from_scratch=False)
                    result = hardener.apply(TorchClassifier(module, input_shape=train.sample_shape),
                                            train, val=val, seed=0)
                    assert result.module is not None
                    out, eps[side] = result.module, result.metrics["epsilon"]
                else:
                    out, eps[side] = _opacus_direct(module, train, sigma, args.dp_epochs, 64,
                                                    0.05, delta)
                times[side].append((time.perf_counter() - wall, time.process_time() - cpu))
                model = TorchClassifier(out.eval(), input_shape=train.sample_shape)
                accuracy[side] = float((model.predict_proba(test.x).argmax(1) == test.y).mean())
        row = {"model": name, "noise_multiplier": sigma, "epochs": args.dp_epochs,
               "n_train": len(train), "batch_size": 64,
               **{side: {"s": min(w for w, _ in times[side]),
                         "cpu_s": min(c for _, c in times[side]), "epsilon": eps[side],
                         "accuracy": accuracy[side]} for side in ("bastion", "opacus")}}
        b, o = row["bastion"], row["opacus"]
        row["overhead"] = b["s"] / o["s"] - 1.0  # type: ignore[index]
        row["cpu_overhead"] = b["cpu_s"] / o["cpu_s"] - 1.0  # type: ignore[index]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _markdown(res: dict[str, Any], command: str) -> str:
    lines = ["# Hardening benchmark", "", "```sh", command, "```", "",
             f"Machine: {res['machine']}. One torch thread, both sides alternating in one "
             "process; best of the repeats. The machine was shared with other jobs while "
             "this ran, so absolute times are noisy; the ratios compare runs made side by "
             "side.", ""]
    if res.get("pgd_at"):
        lines += ["## PGD adversarial training vs ART AdversarialTrainerMadryPGD", "",
                  f"Same initial weights (trained normally for {res.get('pretrain', 0)} epochs "
                  "first), data, batch 128, Adam lr 1e-3, L-inf PGD with "
                  f"{res['pgd_at'][0]['steps']} steps of 2.5·eps/steps and one random start. "
                  "bastion's epoch time includes its per-epoch robust validation "
                  f"(PGD + FGSM on {res['n_val']} samples, fp32), which ART does not do. "
                  "Robust accuracy: bastion's AutoAttack-style ensemble on the first "
                  + ", ".join(f"{r['n_eval']} ({r['model'].split()[0]})" for r in res["pgd_at"])
                  + " held-out samples, in fp32, for every side; each side trains once per seed "
                  "(batch order and PGD random starts; same initial weights), clean and "
                  "robust accuracy are the means over the seeds, times the fastest run.", "",
                  "Precision: **bastion** is the default `attack-precision=auto`, which runs "
                  "the attack steps in bf16 autocast where the CPU has native bf16 (this "
                  f"one: {res.get('bf16_native', 'not recorded')}), with the projection, the "
                  "weight update and all validation in fp32; **bastion fp32** is "
                  "`attack-precision=fp32`. Both train image networks on a channels-last "
                  "copy (bastion's default). **ART** runs everything in fp32, in the default "
                  "layout.", "",
                  "| model | eps | epochs | seeds | attack precision (bastion / bastion fp32 / "
                  "ART) | s/epoch wall (bastion / bastion fp32 / ART) | ratio wall vs ART "
                  "(bastion / bastion fp32) | s/epoch CPU (bastion / bastion fp32 / ART) | "
                  "ratio CPU vs ART (bastion / bastion fp32) | clean (bastion / bastion fp32 "
                  "/ ART) | robust (bastion / bastion fp32 / ART) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["pgd_at"]:
            sides = [r[s] for s in AT_SIDES]

            def cells(key: str, fmt: str, sides: list[dict[str, Any]] = sides) -> str:
                return " / ".join(format(s[key], fmt) for s in sides)

            lines.append(f"| {r['model']} | {r['eps']:.4g} | {r['epochs']} | {r['seeds']} | "
                         f"{cells('attack_precision', 's')} | {cells('epoch_s', '.2f')} | "
                         f"**{r['ratio']:.2f}x** / {r['ratio_fp32']:.2f}x | "
                         f"{cells('epoch_cpu_s', '.2f')} | **{r['cpu_ratio']:.2f}x** / "
                         f"{r['cpu_ratio_fp32']:.2f}x | {cells('clean', '.1%')} | "
                         f"{cells('robust', '.1%')} |")
        lines += ["", "Robust accuracy per seed (mean ± standard deviation over seeds):", "",
                  "| model | side | per seed | mean ± sd |", "|---|---|---|---|"]
        for r in res["pgd_at"]:
            for side in AT_SIDES:
                per_seed = ", ".join(f"{v:.1%}" for v in r[side]["robust_per_seed"])
                lines.append(f"| {r['model']} | {side} | {per_seed} | {r[side]['robust']:.1%} "
                             f"± {r[side]['robust_sd']:.1%} |")
        lines.append("")
    if res.get("dp_sgd"):
        lines += ["## DP-SGD: bastion vs calling Opacus directly", "",
                  "Same initial weights, data, Poisson batches of expected size 64, SGD lr "
                  "0.05 momentum 0.9, clipping 1.0, noise multiplier 1.0, PRV accountant. "
                  "bastion's time includes its per-epoch validation accuracy; both read ε "
                  "from the accountant once, at the end.",
                  "", "| model | epochs | wall s (bastion / Opacus) | overhead wall | CPU s "
                  "(bastion / Opacus) | overhead CPU | ε (bastion / Opacus) | accuracy "
                  "(bastion / Opacus) |", "|---|---|---|---|---|---|---|---|"]
        for r in res["dp_sgd"]:
            b, o = r["bastion"], r["opacus"]
            lines.append(f"| {r['model']} | {r['epochs']} | {b['s']:.2f} / {o['s']:.2f} | "
                         f"**{r['overhead']:+.1%}** | {b['cpu_s']:.2f} / {o['cpu_s']:.2f} | "
                         f"**{r['cpu_overhead']:+.1%}** | {b['epsilon']:.3f} / "
                         f"{o['epsilon']:.3f} | {b['accuracy']:.1%} / {o['accuracy']:.1%} |")
        lines.append("")
    lines += _verdicts(res)
    return "\n".join(lines)


def _paired_verdict(row: dict[str, Any]) -> list[str]:
    """bastion trained on ART's own random draws (``paired.py``) against ART, seed by seed."""
    paired = row.get("bastion_paired")
    if not paired:
        return []
    art = row["art"]["robust_per_seed"]
    diffs = [robust - art[int(seed)] for seed, robust in paired.items() if int(seed) < len(art)]
    mean = float(np.mean(diffs))
    se = float(np.std(diffs, ddof=1)) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    verdict = "within 2 points" if round(mean, 6) >= -0.02 else "not within 2 points"
    return [f"  * Paired (`paired.py`: bastion with ART's random draws for the same seed, "
            f"{len(diffs)} seeds): {float(np.mean(list(paired.values()))):.1%} vs ART's "
            f"{float(np.mean([art[int(k)] for k in paired])):.1%} on those seeds, "
            f"difference {mean:+.1%} ± {se:.1%} standard error: **{verdict}**."]


def _verdicts(res: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against the numbers above, and why they land there."""
    out = ["## Against the targets", ""]
    for r in res.get("pgd_at", []):
        b, a = r["bastion"], r["art"]
        fast = "met" if r["cpu_ratio"] <= 0.5 else "not met"
        # accuracies are float32 fractions of the samples: compare to 1e-6, not bit for bit
        strong = "met" if round(b["robust"] - a["robust"], 6) >= -0.02 else "not met"
        # the standard error of the difference of the two means, from the seed spread
        se = (b["robust_sd"] ** 2 / r["seeds"] + a["robust_sd"] ** 2 / r["seeds"]) ** 0.5
        out.append(f"* {r['model']}: time <= 0.5x ART's: **{fast}** ({r['cpu_ratio']:.2f}x "
                   f"CPU, {r['ratio']:.2f}x wall; attack steps in {b['attack_precision']}; "
                   f"with fp32 attack steps {r['cpu_ratio_fp32']:.2f}x CPU); robust accuracy "
                   f"same or better (mean over {r['seeds']} seeds within 2 points): "
                   f"**{strong}** ({b['robust']:.1%} vs {a['robust']:.1%}, difference "
                   f"{b['robust'] - a['robust']:+.1%} ± {se:.1%} standard error; bastion fp32 "
                   f"{r['bastion_fp32']['robust']:.1%}).")
        out += _paired_verdict(r)
    for r in res.get("dp_sgd", []):
        ok = "met" if r["cpu_overhead"] <= 0.05 else "not met"
        out.append(f"* DP-SGD on {r['model']}: overhead <= 5 % over Opacus: **{ok}** "
                   f"({r['cpu_overhead']:+.1%} CPU, {r['overhead']:+.1%} wall).")
    out += ["", "Why: on the small digits CNN the per-step overhead dominates, and ART pays "
            "for numpy round trips per batch, for weight gradients in every attack step "
            "(bastion asks autograd for the input gradient only) and for its estimator "
            "wrappers. On the 3x32x32 CNN the convolutions dominate: in fp32 both sides do "
            "nearly the same forward and backward passes per step, and the channels-last "
            "layout alone does not reach 0.5x (the bastion fp32 column). What does is running "
            "the attack steps, ten of the eleven forward and backward passes per batch, in "
            "bf16 on a CPU with native bf16, while the weight update and every measurement "
            "stay fp32. On a CPU without native bf16 (or a GPU before Ampere) `auto` falls "
            "back to fp32, and the fp32 ratio is what to expect there.", ""]
    weak = [r["model"] for r in res.get("pgd_at", [])
            if max(r[side]["robust"] for side in AT_SIDES) < 0.1]
    if weak:
        out += [f"Robust accuracy of {', '.join(weak)} stays below 10 % for every side after "
                "these epochs, so that row shows parity of method, not a robust model.", ""]
    return [*out, "No GPU was available for this run.", ""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/hardening"))
    parser.add_argument("--only", choices=["at", "dp"], default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dp-epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pretrain", type=int, default=2,
                        help="Clean epochs before adversarial training (both sides).")
    parser.add_argument("--seeds", type=int, default=1,
                        help="PGD-AT runs per side, seeds 0..N-1; robust accuracy is their "
                             "mean, time the fastest.")
    parser.add_argument("--fp32-seeds", type=int, default=1,
                        help="Seeds for the bastion fp32 side (there for its time; more "
                             "seeds compare its robust accuracy with the bf16 default).")
    parser.add_argument("--resume", action="store_true",
                        help="Keep the seeds results.json already has for the same settings "
                             "and run only the missing ones up to --seeds.")
    parser.add_argument("--models", nargs="+", default=None,
                        help="PGD-AT only on the models whose name starts with one of these "
                             "(e.g. cnn32); the other rows keep their earlier results.")
    parser.add_argument("--dp-repeats", type=int, default=3)
    parser.add_argument("--n32", type=int, default=1500)
    parser.add_argument("--n-val", type=int, default=128)
    parser.add_argument("--n-eval", type=int, default=100)
    parser.add_argument("--render", type=Path, default=None,
                        help="Only rewrite RESULTS.md beside this results.json.")
    parser.add_argument("--command", default=None, help="With --render: the command to cite.")
    args = parser.parse_args()
    if args.render is not None:
        res = json.loads(args.render.read_text())
        text = _markdown(res, args.command or res.get("command", ""))
        (args.render.parent / "RESULTS.md").write_text(text + "\n")
        return
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    import platform

    previous = args.out / "results.json"
    res: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    res |= {"machine": f"{platform.processor() or platform.machine()}, "
                       f"torch {torch.__version__}, CPU",
            "n_val": args.n_val, "n_eval": args.n_eval}
    if args.only in (None, "at"):
        res["pretrain"] = args.pretrain
        res["bf16_native"] = "native bf16" if bf16_is_fast(torch.device("cpu")) else \
            "no native bf16, so auto ran fp32"
        earlier = {row["model"]: row for row in res.get("pgd_at", [])}
        new_rows = {row["model"]: row for row in pgd_at(args, earlier)}
        res["pgd_at"] = [new_rows.get(name) or earlier[name]
                         for name in _problems(args.n32) if name in new_rows or name in earlier]
    if args.only in (None, "dp"):
        res["dp_sgd"] = dp_sgd(args)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "benchmarks/.venv-hardening/bin/python " + " ".join(
        ["benchmarks/hardening/bench.py", *sys.argv[1:]])
    earlier = res.get("command", "").splitlines() if args.only else []
    res["command"] = "\n".join([*(c for c in earlier if c != command), command])
    (args.out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "RESULTS.md").write_text(_markdown(res, res["command"]) + "\n")


if __name__ == "__main__":
    main()
