"""Membership inference and extraction: bastion against IBM ART on the same targets.

Run from the repository root (ART in its own venv, see RESULTS.md)::

    .venv/bin/python benchmarks/privacy/bench.py --out benchmarks/privacy

The target is an overfit random forest on generated 5-class data (10 % flipped labels,
so memorisation shows). Everyone sees the same target: its probabilities on every
record are computed once here and handed to ART through an ``.npz`` file, where a
lookup table answers ART's black-box queries. Everyone is scored on the same 1,000
members and 1,000 non-members (so 0.1 % FPR is one false positive). The attacker's
other knowledge:

* ART black-box (supervised) is trained on the other 1,000 members and 1,000
  non-members, whose membership it is told (a stronger assumption than bastion's);
* ART shadow models and bastion's references use the 2,000-record population pool;
* bastion's reference models are trained on halves of the evaluated records plus
  500 population records, the rest of the population being RMIA's ``z``.

Extraction: the same digits MLP is stolen with the same 500-query budget from the same
unlabelled pool by bastion's strategies and ART's KnockoffNets and CopycatCNN.

Writes ``results.json`` and ``RESULTS.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from bastion.attacks.inference import (
    RMIA,
    LiRA,
    LossThreshold,
    ShadowModels,
    SklearnRecipe,
    audit_membership,
)
from bastion.data.dataset import Dataset
from bastion.models.sklearn import SklearnClassifier

ROOT = Path(__file__).resolve().parents[2]
ART_PYTHON = ROOT / "benchmarks" / ".venv-art" / "bin" / "python"
BOUNDS = (-30.0, 30.0)


def data(seed: int) -> dict[str, np.ndarray]:
    x, y = make_classification(n_samples=6000, n_features=20, n_informative=10, n_classes=5,
                               n_clusters_per_class=1, flip_y=0.1, random_state=seed)
    return {"x": x.astype(np.float32), "y": y.astype(np.int64),
            "members": np.arange(0, 2000), "nonmembers": np.arange(2000, 4000),
            "population": np.arange(4000, 6000)}


def run_bastion(d: dict[str, np.ndarray], est: RandomForestClassifier, n_refs: int,
                seed: int) -> list[dict[str, Any]]:
    x, y = d["x"], d["y"]
    ev_in, ev_out = d["members"][1000:], d["nonmembers"][1000:]
    model = SklearnClassifier(est, bounds=BOUNDS)
    members = Dataset(x=x[ev_in], y=y[ev_in])
    nonmembers = Dataset(x=x[ev_out], y=y[ev_out])
    population = Dataset(x=x[d["population"][:500]], y=y[d["population"][:500]])
    attacks = [LossThreshold(), ShadowModels(), LiRA(), LiRA(online=False), RMIA(),
               RMIA(online=False)]
    started = time.perf_counter()
    audit = audit_membership(model, members, nonmembers, attacks=attacks,
                             recipe=SklearnRecipe(estimator=est, bounds=BOUNDS),
                             n_references=n_refs, population=population, seed=seed)
    total = time.perf_counter() - started
    assert audit.references is not None
    out = []
    for r in audit.results:
        out.append({"tool": "bastion", "attack": r.attack, "auc": r.auc,
                    "tpr_at_0.1pct": r.tpr_at_fpr[0.001], "tpr_at_1pct": r.tpr_at_fpr[0.01],
                    "attack_time_s": r.wall_time_s})
    shared = total - sum(o["attack_time_s"] for o in out)
    uses_refs = {a.label for a in attacks if a.needs_references}
    for row in out:
        row["shared_reference_time_s"] = shared if row["attack"] in uses_refs else 0.0
    out.append({"tool": "bastion", "attack": "_reference_model_fit",
                "mean_fit_s": audit.references.train_time_s})
    return out


def run_art(payload: dict[str, np.ndarray], seed: int, *mode: str) -> list[dict[str, Any]]:
    """Run bench_art.py in ART's venv on ``payload`` (an ``.npz``, never a pickle)."""
    if not ART_PYTHON.exists():
        return [{"tool": "art", "error": f"{ART_PYTHON} not found"}]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "target.npz"
        np.savez(path, **payload)
        done = subprocess.run(
            [str(ART_PYTHON), str(Path(__file__).with_name("bench_art.py")), str(path),
             str(seed), *mode], capture_output=True, text=True, check=False,
            env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "PATH": "/usr/bin:/bin"})
    if done.returncode:
        return [{"tool": "art", "error": done.stderr.strip().splitlines()[-1]}]
    return list(json.loads(done.stdout))


def run_extraction(seed: int, budget: int) -> list[dict[str, Any]]:
    """Steal an MLP on the 8x8 digits with ``budget`` queries: bastion vs ART."""
    import torch

    from bastion.attacks.extraction import (
        JacobianAugmentation,
        KnockoffNets,
        RandomQueries,
        extract_model,
    )

    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((64,), max_iter=300, random_state=seed).fit(x[:900], y[:900])
    pool, eval_x = x[900:900 + budget], x[1400:]
    rows: list[dict[str, Any]] = []
    for strategy in (KnockoffNets(pool=pool), JacobianAugmentation(seed_x=pool[:100]),
                     RandomQueries()):
        model = SklearnClassifier(est)
        result = extract_model(model, strategy, budget=budget, eval_x=eval_x, seed=seed)
        rows.append({"tool": "bastion", "attack": result.strategy, "queries": result.n_queries,
                     "fidelity": result.fidelity, "time_s": result.wall_time_s})
    payload = {"pool": pool, "pool_probs": est.predict_proba(pool), "eval_x": eval_x,
               "eval_probs": est.predict_proba(eval_x), "budget": np.asarray(budget)}
    return rows + run_art(payload, seed, "extraction")


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Membership inference: bastion vs IBM ART",
        "",
        f"Command: `{meta['command']}` ({meta['python']}, {meta['platform']}, one thread).",
        "",
        f"Target: random forest (100 trees) on generated 5-class data, trained on 2,000 "
        f"records in {meta['target_fit_s']:.3f} s; train accuracy {meta['train_acc']:.3f}, "
        f"test accuracy {meta['test_acc']:.3f}. Scored on the same 1,000 members and "
        "1,000 non-members. bastion: "
        f"{meta['n_references']} reference models, each fitted in "
        f"{meta['ref_fit_s']:.3f} s on average "
        f"({meta['ref_fit_s'] / meta['target_fit_s']:.2f}x the target's fit).",
        "",
        "| tool | attack | AUC | TPR @ 0.1 % FPR | TPR @ 1 % FPR | time (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['tool']} | not run: {r['error']} | | | | |")
        elif "auc" in r:
            t = r.get("attack_time_s", 0.0) + r.get("shared_reference_time_s", 0.0)
            lines.append(f"| {r['tool']} | {r['attack']} | {r['auc']:.3f} | "
                         f"{r['tpr_at_0.1pct']:.1%} | {r['tpr_at_1pct']:.1%} | {t:.2f} |")
    lines += [
        "",
        "bastion times include the shared reference-model training (all of its "
        "reference-model attacks reuse one set of models); ART times include its own shadow "
        "models or attack-model training. ART's attack models are not seeded, so its rows "
        "vary a little from run to run; bastion's are fixed by `--seed`.",
        "",
        "ART runs in its own environment, made once with:",
        "",
        "```",
        "python3 -m venv benchmarks/.venv-art",
        "benchmarks/.venv-art/bin/pip install adversarial-robustness-toolbox==1.20.1 "
        "scikit-learn numpy scipy packaging tqdm",
        "```",
        "",
        "DP-SGD targets (Opacus, ε = 1 and 8): see RESULTS_DP.md (`bench_dp.py`). "
        "Not measured: ML Privacy Meter.",
        "",
    ]
    return "\n".join(lines)


def extraction_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## Model extraction at the same budget",
        "",
        "Target: scikit-learn MLP (64 hidden units) on the 8x8 digits, trained on 900 "
        "images. Attacker pool: 500 other digits images (unlabelled); fidelity is "
        "agreement with the target's label on 397 held-out images. bastion's surrogate is "
        "a torch MLP (128-128) trained on the returned probabilities in 4 rounds; ART's "
        "thief is a scikit-learn MLP (128-128), as ART needs a trainable estimator.",
        "",
        "| tool | strategy | queries | fidelity | time (s) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['tool']} | not run: {r['error']} | | | |")
        else:
            lines.append(f"| {r['tool']} | {r['attack']} | {r['queries']} | "
                         f"{r['fidelity']:.1%} | {r['time_s']:.2f} |")
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/privacy"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-references", type=int, default=16)
    args = parser.parse_args()
    with threadpool_limits(limits=1):
        d = data(args.seed)
        x, y = d["x"], d["y"]
        est = RandomForestClassifier(n_estimators=100, random_state=args.seed, n_jobs=1)
        started = time.perf_counter()
        est.fit(x[d["members"]], y[d["members"]])
        fit_s = time.perf_counter() - started
        probs = est.predict_proba(x)
        rows = run_bastion(d, est, args.n_references, args.seed)
        rows += run_art({"probs": probs, **d}, args.seed)
        stolen = run_extraction(args.seed, budget=500)
    ref = next(r for r in rows if r.get("attack") == "_reference_model_fit")
    meta = {
        "command": "  ".join(["python", *sys.argv]).replace("  ", " "),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "target_fit_s": fit_s,
        "ref_fit_s": ref["mean_fit_s"],
        "n_references": args.n_references,
        "train_acc": float((est.predict(x[d["members"]]) == y[d["members"]]).mean()),
        "test_acc": float((est.predict(x[d["nonmembers"]]) == y[d["nonmembers"]]).mean()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "extraction": stolen}, indent=2))
    (args.out / "RESULTS.md").write_text(markdown(rows, meta) + extraction_markdown(stolen))


if __name__ == "__main__":
    main()
