"""bastion's poisoning detectors side by side with ART's, on the same data and model.

For digits (8x8 images) and breast_cancer (tabular, min-max scaled), training split of
``bastion.data.demo``, poisoned with random label flips or BadNets at 1, 5 and 10 %
(digits: 2x2 corner patch, target 0; breast cancer: the last 3 features set to 1,
target 1 "benign" — with target 0 the clean model already sends 99 % of triggered rows
to "malignant", so there would be no backdoor to remove):

1. train one small torch MLP (input -> 64 ReLU -> classes, Adam, full batch, seed 0)
   on the poisoned rows;
2. TPR/FPR of every bastion detector: the audit as ``bastion data audit --model`` runs it
   (inputs, plus spectral signatures on the model's log-probabilities), and activation
   clustering and spectral signatures on the MLP's hidden activations (the layer ART uses);
3. TPR/FPR of ART 1.20.1's ``ActivationDefence`` (2 clusters, PCA to 10 dims, "smaller"
   analysis) and ``SpectralSignatureDefense`` (expected poison = the true fraction,
   eps multiplier 1.5) on the same model and rows;
4. for BadNets, the backdoor's attack success rate (triggered held-out rows of other
   classes sent to the target) and clean accuracy, before and after dropping the audit's
   suspect rows (what ``--out`` writes) or only the rows of its backdoor findings
   (activation and attribution clustering, Neural Cleanse carriers), and of a model
   trained on the unpoisoned rows: each the mean over the same MLP retrained from 5
   seeds, since one held-out row moves a single run's accuracy by 0.2-0.7 points;
5. on digits BadNets, the same for every target class (the ``sweep`` rows), with the MLP
   at 1, 5 and 10 % and a linear model (softmax regression, the same training, whose
   "hidden activations" are the inputs) at 5 and 10 %.

Writes ``peers.json`` and ``RESULTS.md``; ``--render`` rewrites RESULTS.md from the
saved JSON. Run it in the benchmark venv, which has ART (see README.md).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bastion.attacks.poisoning import BadNets, LabelFlip, PoisonResult
from bastion.data.dataset import Dataset
from bastion.data.demo import demo_breast_cancer, demo_digits
from bastion.detection.poisoning import ActivationClustering, SpectralSignatures
from bastion.detection.poisoning.audit import audit
from bastion.models import as_classifier

HERE = Path(__file__).parent
FRACTIONS = (0.01, 0.05, 0.10)
RETRAIN_SEEDS = range(5)  # one held-out digits row is 0.22 points; average the retraining


def _data(name: str) -> tuple[Dataset, np.ndarray, np.ndarray]:
    train, test = demo_digits(0) if name == "digits" else demo_breast_cancer(0)
    assert train.y is not None and test.y is not None
    if train.kind == "image":
        return train, test.x, test.y
    lo, span = train.x.min(axis=0), np.ptp(train.x, axis=0) + 1e-12
    scaled = Dataset(x=((train.x - lo) / span).astype(np.float32), y=train.y, kind="tabular")
    return scaled, np.clip((test.x - lo) / span, 0, 1).astype(np.float32), test.y


def _attack(train: Dataset, attack: str, fraction: float, target: int = 0,
            ) -> tuple[PoisonResult, BadNets | None]:
    assert train.y is not None
    rng = np.random.default_rng(0)
    if attack == "label-flip":
        return LabelFlip(fraction=fraction)(train.x, train.y, generator=rng), None
    image = train.kind == "image"
    badnets = BadNets(target=target, fraction=fraction, patch_size=2 if image else 3,
                      image=image)
    return badnets(train.x, train.y, generator=rng), badnets


class MLP(torch.nn.Module):
    """input -> 64 ReLU (the activations the detectors read) -> classes; or linear."""

    def __init__(self, n_in: int, n_classes: int, *, linear: bool = False) -> None:
        super().__init__()
        self.hidden: torch.nn.Module = (
            torch.nn.Flatten() if linear else
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n_in, 64), torch.nn.ReLU()))
        self.out = torch.nn.Linear(n_in if linear else 64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


def _train(x: np.ndarray, y: np.ndarray, n_classes: int, linear: bool = False,
           seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    net = MLP(int(np.prod(x.shape[1:])), n_classes, linear=linear)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def _predict(net: MLP, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()


def _hidden(net: MLP, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net.hidden(torch.tensor(x, dtype=torch.float32)).numpy()


def _asr(net: MLP, badnets: BadNets, x: np.ndarray, y: np.ndarray) -> float:
    victims = x[y != badnets.target]
    return float((_predict(net, badnets.apply(victims)) == badnets.target).mean())


def _art(net: MLP, x: np.ndarray, y: np.ndarray, n_classes: int,
         fraction: float) -> dict[str, np.ndarray]:
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(model=net, loss=torch.nn.CrossEntropyLoss(),
                            input_shape=x.shape[1:], nb_classes=n_classes,
                            clip_values=(0.0, 1.0))
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    _, ac_clean = ActivationDefence(clf, x, onehot).detect_poison(
        nb_clusters=2, nb_dims=10, reduce="PCA", cluster_analysis="smaller")
    _, ss_clean = SpectralSignatureDefense(clf, x, onehot, expected_pp_poison=fraction,
                                           batch_size=128, eps_multiplier=1.5).detect_poison()
    return {"ART ActivationDefence": np.asarray(ac_clean) == 0,
            "ART SpectralSignatureDefense": np.asarray(ss_clean) == 0}


_BACKDOOR_DETECTORS = ("activation-clustering", "attribution-clustering", "neural-cleanse")


def _case(name: str, attack: str, fraction: float, target: int | None = None,
          linear: bool = False) -> list[dict[str, Any]]:
    if target is None:
        target = 0 if name == "digits" else 1
    train, x_test, y_test = _data(name)
    res, badnets = _attack(train, attack, fraction, target)
    n_classes = int(train.y.max()) + 1 if train.y is not None else 0
    x = np.asarray(res.x, dtype=np.float32)
    net = _train(x, res.y, n_classes, linear)
    model = as_classifier(net, input_shape=x.shape[1:], n_classes=n_classes)
    start = time.perf_counter()
    result = audit(Dataset(x=x, y=res.y, kind=train.kind), model=model,
                   expected_fraction=fraction)
    audit_s = time.perf_counter() - start
    flags = {f"bastion {d}": det.flagged for d, det in result.detections.items()}
    flags["bastion audit (suspect)"] = result.suspect
    acts = _hidden(net, x)
    flags["bastion activation-clustering (hidden)"] = ActivationClustering()(acts, res.y).flagged
    flags["bastion spectral-signatures (hidden)"] = SpectralSignatures(
        expected_fraction=fraction)(acts, res.y).flagged
    start = time.perf_counter()
    flags.update(_art(net, x, res.y, n_classes, fraction))
    art_s = time.perf_counter() - start
    m = res.mask
    base = {"data": name, "attack": attack, "fraction": fraction, "target": target,
            "model": "linear" if linear else "mlp",
            "audit_s": round(audit_s, 2), "art_s": round(art_s, 2)}
    if result.triggers is not None:
        base["neural_cleanse_targets"] = result.triggers.targets.tolist()
    rows = [{**base, "detector": d, "tpr": float(f[m].mean()), "fpr": float(f[~m].mean())}
            for d, f in flags.items()]
    if badnets is not None:
        keep_backdoor = ~np.any([result.detections[d].flagged for d in _BACKDOOR_DETECTORS
                                 if d in result.detections], axis=0)
        training = {"before": (x, res.y), "after": (x[~result.suspect], res.y[~result.suspect]),
                    "after_backdoor_rows": (x[keep_backdoor], res.y[keep_backdoor]),
                    "unpoisoned": (np.asarray(train.x, dtype=np.float32), train.y)}
        scores = {f"{metric}_{name}": [] for metric in ("asr", "acc") for name in training}
        for seed in RETRAIN_SEEDS:
            for name, (xs, ys) in training.items():
                fit = _train(xs, ys, n_classes, linear, seed=seed)
                scores[f"asr_{name}"].append(_asr(fit, badnets, x_test, y_test))
                scores[f"acc_{name}"].append(float((_predict(fit, x_test) == y_test).mean()))
        for row in rows:
            row.update({k: float(np.mean(v)) for k, v in scores.items()})
    return rows


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| data | attack | poison | detector | TPR | FPR |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['data']} | {r['attack']} | {r['fraction']:.0%} | {r['detector']} | "
              f"{r['tpr']:.3f} | {r['fpr']:.3f} |" for r in rows]
    return lines


def _points(after: float, before: float) -> str:
    return f"{100 * (after - before):+.1f} pt"


def _cleaning(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| data | model | poison | target | NC flags | ASR before | after (all suspects) "
             "| after (backdoor rows) | unpoisoned | clean acc before | after (all suspects) | "
             "after (backdoor rows) | unpoisoned |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    seen = set()
    for r in rows:
        key = (r["data"], r.get("model", "mlp"), r["fraction"], r["target"])
        if "asr_before" not in r or key in seen:
            continue
        seen.add(key)
        lines.append(f"| {r['data']} | {r.get('model', 'mlp')} | {r['fraction']:.0%} | "
                     f"{r['target']} | "
                     f"{r.get('neural_cleanse_targets', '-')} | {r['asr_before']:.3f} | "
                     f"{r['asr_after']:.3f} | {r['asr_after_backdoor_rows']:.3f} | "
                     f"{r['asr_unpoisoned']:.3f} | {r['acc_before']:.3f} | "
                     f"{r['acc_after']:.3f} ({_points(r['acc_after'], r['acc_before'])}) | "
                     f"{r['acc_after_backdoor_rows']:.3f} "
                     f"({_points(r['acc_after_backdoor_rows'], r['acc_before'])}) | "
                     f"{r['acc_unpoisoned']:.3f} |")
    return lines


def _headline(rows: list[dict[str, Any]]) -> list[str]:
    """At 5 % BadNets: the best bastion detector (highest TPR at FPR <= 0.05) vs ART's best."""
    lines = ["| data | best bastion detector | TPR | FPR | best ART defence | TPR | FPR |",
             "|---|---|---|---|---|---|---|"]
    for name in ("digits", "breast_cancer"):
        case = [r for r in rows if r["data"] == name and r["attack"] == "badnets"
                and r["fraction"] == 0.05]
        ours = [r for r in case if r["detector"].startswith("bastion") and r["fpr"] <= 0.05]
        art = [r for r in case if r["detector"].startswith("ART")]
        b = max(ours, key=lambda r: (r["tpr"], -r["fpr"]))
        a = max(art, key=lambda r: r["tpr"] - r["fpr"])
        lines.append(f"| {name} | {b['detector']} | {b['tpr']:.3f} | {b['fpr']:.3f} | "
                     f"{a['detector']} | {a['tpr']:.3f} | {a['fpr']:.3f} |")
    return lines


def _render(rows: list[dict[str, Any]], sweep: list[dict[str, Any]]) -> None:
    target0 = [r for r in rows if r["data"] == "digits" and r["attack"] == "badnets"
               and r["fraction"] in FRACTIONS]
    every = sorted(sweep + target0, key=lambda r: (r.get("model", "mlp") != "mlp",
                                                   r["fraction"], r["target"]))
    lines = ["# Poisoning: bastion's detectors side by side with ART", "",
             "`benchmarks/.venv-poisoning/bin/python benchmarks/poisoning/peers.py` "
             "(ART 1.20.1, torch 2.13.0 CPU, one thread). Same poisoned rows, same trained "
             "MLP for every detector; TPR/FPR at each detector's own threshold. The machine "
             "had 2 cores shared with other jobs, so the seconds below are indicative. "
             "Set-up and findings: `benchmarks/poisoning/README.md`.", "",
             "## 5 % BadNets: best detector at FPR <= 0.05", ""]
    lines += _headline(rows)
    lines += ["", "## BadNets: attack success rate (ASR) and clean accuracy before and after "
              "cleaning and retraining", ""]
    lines += _cleaning(rows)
    lines += ["", "## Digits BadNets, every target class: MLP at 1, 5 and 10 %, linear model "
              "at 5 and 10 %", ""]
    lines += _sweep_summary(every)
    lines += ["", *_cleaning(every)]
    lines += ["", "| model | poison | target | detector | TPR | FPR |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r.get('model', 'mlp')} | {r['fraction']:.0%} | {r['target']} | "
              f"{r['detector']} | {r['tpr']:.3f} | {r['fpr']:.3f} |"
              for r in every if r["detector"] in _SWEEP_SHOWN]
    lines += ["", "## Every detector, every case", ""]
    lines += _table(rows)
    seconds = {(r["data"], r["attack"], r["fraction"]): (r["audit_s"], r["art_s"]) for r in rows}
    lines += ["", "| data | attack | poison | bastion audit s | ART (both defences) s |",
              "|---|---|---|---|---|"]
    lines += [f"| {d} | {a} | {f:.0%} | {s[0]} | {s[1]} |" for (d, a, f), s in seconds.items()]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _sweep_summary(every: list[dict[str, Any]]) -> list[str]:
    """Per model and poison rate: in how many target classes each target of the issue holds."""
    lines = ["| model | poison | targets with a detector at TPR >= 0.95, FPR <= 0.05 | "
             "ASR after cleaning < 5 % (or < the unpoisoned model's + 5 pt) | clean accuracy "
             "drop < 1 pt | worst accuracy change |", "|---|---|---|---|---|---|"]
    groups = sorted({(r.get("model", "mlp"), r["fraction"]) for r in every})
    for model, fraction in groups:
        case = [r for r in every if r.get("model", "mlp") == model and r["fraction"] == fraction]
        targets = sorted({r["target"] for r in case})
        found, asr_ok, acc_ok, worst = 0, 0, 0, 0.0
        for t in targets:
            per = [r for r in case if r["target"] == t]
            found += any(r["detector"].startswith("bastion") and r["tpr"] >= 0.95
                         and r["fpr"] <= 0.05 for r in per)
            r = per[0]
            asr_ok += r["asr_after"] < max(0.05, r["asr_unpoisoned"] + 0.05)
            change = r["acc_after"] - r["acc_before"]
            acc_ok += change > -0.01
            worst = min(worst, change)
        n = len(targets)
        lines.append(f"| {model} | {fraction:.0%} | {found}/{n} | {asr_ok}/{n} | {acc_ok}/{n} "
                     f"| {100 * worst:+.1f} pt |")
    return lines


_SWEEP_SHOWN = ("bastion activation-clustering", "bastion attribution-clustering",
                "bastion neural-cleanse",
                "bastion audit (suspect)", "ART ActivationDefence",
                "ART SpectralSignatureDefense")


def main() -> None:
    if "--render" in sys.argv:  # rewrite RESULTS.md from the last run's peers.json
        saved = json.loads((HERE / "peers.json").read_text(encoding="utf-8"))
        _render(saved["main"], saved["sweep"])
        return
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    for name in ("digits", "breast_cancer"):
        for attack in ("label-flip", "badnets"):
            for fraction in FRACTIONS:
                rows += _case(name, attack, fraction)
                print(name, attack, fraction, file=sys.stderr)
    sweep = [r for f in FRACTIONS for t in range(1, 10)
             for r in _case("digits", "badnets", f, t)]
    sweep += [r for f in (0.05, 0.10) for t in range(10)
              for r in _case("digits", "badnets", f, t, linear=True)]
    (HERE / "peers.json").write_text(json.dumps({"main": rows, "sweep": sweep}, indent=1),
                                     encoding="utf-8")
    _render(rows, sweep)


if __name__ == "__main__":
    main()
