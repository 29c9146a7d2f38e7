"""TPR/FPR of each bastion poisoning detector, and of the audit's suspect set.

Data: sklearn's digits (images) and breast_cancer (tabular, min-max scaled), training
split of ``bastion.data.demo``. Poison: random label flips and BadNets (target class 0)
at 1 %, 5 % and 10 %. Detectors run on the inputs (no model). Writes ``detectors.json``
and ``DETECTORS.md`` next to this file (``peers.py`` writes RESULTS.md: with a model,
side by side with ART).

Run: python benchmarks/poisoning/detectors.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from bastion.attacks.poisoning import BadNets, LabelFlip, PoisonResult
from bastion.data.dataset import Dataset
from bastion.data.demo import demo_breast_cancer, demo_digits
from bastion.detection.poisoning.audit import audit

HERE = Path(__file__).parent


def _poison(name: str, attack: str, fraction: float) -> tuple[Dataset, PoisonResult]:
    train, _ = demo_digits(0) if name == "digits" else demo_breast_cancer(0)
    assert train.y is not None
    image = train.kind == "image"
    x = train.x if image else (train.x - train.x.min(0)) / (np.ptp(train.x, 0) + 1e-12)
    rng = np.random.default_rng(0)
    res = (LabelFlip(fraction=fraction)(x, train.y, generator=rng) if attack == "label-flip"
           else BadNets(target=0, fraction=fraction, patch_size=2 if image else 3,
                        image=image)(x, train.y, generator=rng))
    return Dataset(x=res.x, y=res.y, kind=train.kind), res


def main() -> None:
    rows = []
    for name in ("digits", "breast_cancer"):
        for attack in ("label-flip", "badnets"):
            for fraction in (0.01, 0.05, 0.10):
                data, res = _poison(name, attack, fraction)
                start = time.perf_counter()
                result = audit(data, expected_fraction=fraction)
                seconds = time.perf_counter() - start
                m = res.mask
                flags = {d: det.flagged for d, det in result.detections.items()}
                flags["audit (suspect)"] = result.suspect
                for det_name, flagged in flags.items():
                    scores = (result.detections[det_name].scores if det_name in
                              result.detections else result.votes.astype(float))
                    rows.append({"data": name, "attack": attack, "fraction": fraction,
                                 "detector": det_name, "tpr": float(flagged[m].mean()),
                                 "fpr": float(flagged[~m].mean()),
                                 "auc": float(roc_auc_score(m, scores)),
                                 "audit_s": round(seconds, 2)})
    (HERE / "detectors.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    lines = ["# Poisoning detectors", "",
             "`python benchmarks/poisoning/detectors.py` — detectors on the inputs, no model; "
             "TPR/FPR at each detector's documented threshold, AUC of its scores "
             "(the audit row ranks by votes).", "",
             "| data | attack | poison | detector | TPR | FPR | AUC | audit s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['data']} | {r['attack']} | {r['fraction']:.0%} | {r['detector']} | "
              f"{r['tpr']:.3f} | {r['fpr']:.3f} | {r['auc']:.3f} | {r['audit_s']} |"
              for r in rows]
    (HERE / "DETECTORS.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
