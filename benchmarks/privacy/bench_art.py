"""ART's membership attacks on the target that bench.py exported (run in ART's venv).

Usage: ``bench_art.py TARGET.npz SEED [extraction]``; prints a JSON list of results. ART queries the
target through a ``BlackBoxClassifier`` whose predict function looks each row up in
the exported probabilities, so ART attacks exactly the model bastion attacked.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
from art.attacks.extraction import CopycatCNN, KnockoffNets
from art.attacks.inference.membership_inference import (
    MembershipInferenceBlackBox,
    MembershipInferenceBlackBoxRuleBased,
    ShadowModels,
)
from art.estimators.classification import BlackBoxClassifier, SklearnClassifier
from art.estimators.classification.scikitlearn import ScikitlearnClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neural_network import MLPClassifier


def low_fpr(scores: np.ndarray, member: np.ndarray) -> dict[str, float]:
    fpr, tpr, _ = roc_curve(member, scores)
    return {"auc": float(roc_auc_score(member, scores)),
            "tpr_at_0.1pct": float(tpr[fpr <= 0.001].max()),
            "tpr_at_1pct": float(tpr[fpr <= 0.01].max())}


def lookup_classifier(x: np.ndarray, probs: np.ndarray) -> BlackBoxClassifier:
    """The exported target as an ART black box: each query row is looked up."""
    table = {row.tobytes(): p for row, p in zip(x, probs, strict=True)}

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.stack([table[np.asarray(r, dtype=x.dtype).tobytes()] for r in batch])

    return BlackBoxClassifier(predict, input_shape=x.shape[1:], nb_classes=probs.shape[1])


class _Thief(MLPClassifier):  # type: ignore[misc]
    """A scikit-learn MLP that accepts (and ignores) the torch-style training arguments
    ART's extraction attacks pass to ``fit``; its own ``max_iter`` sets the epochs."""

    def fit(self, x: np.ndarray, y: np.ndarray, **_torch_args: Any) -> _Thief:
        return super().fit(x, y)  # type: ignore[no-any-return]


def extraction(d: Any, seed: int) -> list[dict[str, Any]]:
    """KnockoffNets (random) and CopycatCNN with an MLP thief at bastion's budget."""
    pool, eval_x, budget = d["pool"], d["eval_x"], int(d["budget"])
    target = lookup_classifier(np.concatenate([pool, eval_x]),
                               np.concatenate([d["pool_probs"], d["eval_probs"]]))
    target_labels = d["eval_probs"].argmax(1)
    rows = []
    for name, attack_cls in (("knockoff-nets (random)", KnockoffNets),
                             ("copycat-cnn", CopycatCNN)):
        started = time.perf_counter()
        # The wrapper reads the class count from a fitted model: 20 labelled pool images
        # (not counted in the budget); extract() refits it from scratch.
        thief = ScikitlearnClassifier(_Thief((128, 128), max_iter=300, random_state=seed)
                                      .fit(pool[:20], d["pool_probs"][:20].argmax(1)))
        kwargs = {"sampling_strategy": "random", "verbose": False} if attack_cls is KnockoffNets \
            else {}
        attack = attack_cls(target, batch_size_fit=64, batch_size_query=64, nb_epochs=300,
                            nb_stolen=budget, use_probability=True, **kwargs)
        stolen = attack.extract(pool, thieved_classifier=thief)
        fidelity = float((stolen.predict(eval_x).argmax(1) == target_labels).mean())
        rows.append({"tool": "art", "attack": name, "queries": budget, "fidelity": fidelity,
                     "time_s": time.perf_counter() - started})
    return rows


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[3] == "extraction":
        print(json.dumps(extraction(np.load(sys.argv[1], allow_pickle=False),
                                    int(sys.argv[2]))))
        return
    d = np.load(sys.argv[1], allow_pickle=False)
    seed = int(sys.argv[2])
    x, y, probs = d["x"], d["y"], d["probs"]
    n_classes = probs.shape[1]
    target = lookup_classifier(x, probs)
    onehot = np.eye(n_classes)[y]
    m, n, pop = d["members"], d["nonmembers"], d["population"]
    ev_x = np.concatenate([x[m[1000:]], x[n[1000:]]])
    ev_y = np.concatenate([onehot[m[1000:]], onehot[n[1000:]]])
    member = np.r_[np.ones(1000, bool), np.zeros(1000, bool)]
    rows = []

    started = time.perf_counter()
    rule = MembershipInferenceBlackBoxRuleBased(target)
    scores = rule.infer(ev_x, ev_y).astype(float)
    rows.append({"tool": "art", "attack": "rule-based", **low_fpr(scores, member),
                 "attack_time_s": time.perf_counter() - started})

    for kind in ("rf", "gb"):
        started = time.perf_counter()
        bb = MembershipInferenceBlackBox(target, attack_model_type=kind)
        bb.fit(x[m[:1000]], onehot[m[:1000]], x[n[:1000]], onehot[n[:1000]])
        scores = bb.infer(ev_x, ev_y, probabilities=True).reshape(-1)
        rows.append({"tool": "art", "attack": f"black-box-{kind} (supervised)",
                     **low_fpr(scores, member), "attack_time_s": time.perf_counter() - started})

    started = time.perf_counter()
    # ART's wrapper needs a fitted estimator to know the class count; ShadowModels
    # clones and refits it on each shadow training set.
    forest = RandomForestClassifier(n_estimators=100, random_state=seed)
    template = SklearnClassifier(forest.fit(x[pop[:200]], y[pop[:200]]))
    shadow = ShadowModels(template, num_shadow_models=3, random_state=seed)
    (mx, my, mp), (nx, ny, np_) = shadow.generate_shadow_dataset(x[pop], onehot[pop])
    bb = MembershipInferenceBlackBox(target, attack_model_type="rf")
    bb.fit(mx, my, nx, ny, mp, np_)
    scores = bb.infer(ev_x, ev_y, probabilities=True).reshape(-1)
    rows.append({"tool": "art", "attack": "shadow-models (3, rf)", **low_fpr(scores, member),
                 "attack_time_s": time.perf_counter() - started})
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
