"""``data-quality``: problems in the data that skew a model or hide poisoning.

What it looks for, and the severity thresholds:

- NaN or inf values: medium (a model cannot score them; imputation hides them),
  with counts per feature;
- the same sample with different labels (conflicting duplicates): medium from one
  pair — label noise or label flipping;
- test samples that also appear in the training data (leakage): medium from one,
  high when at least 10 % of the test set — accuracy is overstated; leaked rows that
  carry another label than their training twin are counted apart;
- class imbalance, largest over smallest class: low from 3x, medium from 10x;
  a class present in training but missing from the test set: low;
- exact duplicates (rows with identical values): low from 5 % of the rows, else info;
- outliers by IsolationForest (scores below Tukey's lower fence, Q1 - 1.5 IQR):
  low when more than 5 % of the rows are anomalous (a cluster of odd rows is what
  poisoning often looks like), else info;
- image values outside [0, 1] (or the model's bounds when a model is given), or
  features with more than 5 % of their test values outside the training range
  (drift): low;
- constant features: info (they carry nothing; on images, blank border pixels).

NaN/inf, duplicates and the value range are checked on the training and the test
data alike (ids end in ``-train`` or ``-test``); balance, constant features and
outliers on the training data (the test data when it is all there is).
Evidence holds counts and row indices, never raw values.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bastion.data.dataset import Dataset
from bastion.report.finding import Chart, Finding, Metric, Series, Severity
from bastion.scan.check import CHECKS, Need, ScanContext, Target

__all__ = ["DataQuality"]

_MAX_OUTLIER_ROWS = 5000
_TOP = 20


def _feature(ds: Dataset, column: int) -> str:
    """A flattened feature's name: its column name, else its index."""
    return ds.feature_names[column] if len(ds.feature_names) > column else str(column)


def _row_hashes(x: np.ndarray) -> list[bytes]:
    """One digest per row, by value: equal rows hash alike whatever their dtype.

    Rows are widened to float64 (exact for float32 and small ints), and 0.0 is added
    so that -0.0 and 0.0 give the same bytes.
    """
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float64) + 0.0
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


@CHECKS.register("data-quality")
@dataclass(frozen=True, kw_only=True)
class DataQuality:
    """Imbalance, duplicates, leakage, NaN/inf, constant and out-of-range features, outliers."""

    name: ClassVar[str] = "data-quality"
    title: ClassVar[str] = "Training data quality"
    owasp: ClassVar[tuple[str, ...]] = ("ML02", "ML08")
    atlas: ClassVar[tuple[str, ...]] = ("AML.T0020", "AML.T0059")
    needs: ClassVar[tuple[Need, ...]] = ("data",)
    imbalance_low: float = 3.0
    imbalance_medium: float = 10.0
    duplicate_fraction: float = 0.05
    outlier_fraction: float = 0.05
    drift_fraction: float = 0.05

    def applies(self, target: Target) -> bool:
        return not target.missing(self.needs)

    def _f(self, slug: str, title: str, severity: Severity, **kw: object) -> Finding:
        return Finding(id=f"{self.name}/{slug}", check=self.name, title=title,
                       severity=severity, owasp=list(self.owasp), atlas=list(self.atlas),
                       **kw)

    def run(self, target: Target, ctx: ScanContext) -> list[Finding]:
        given = [(role, ds) for role, ds in (("train", target.train), ("test", target.test))
                 if ds is not None]
        bounds = target.model.bounds if target.model is not None else (0.0, 1.0)
        found: list[Finding] = []
        for role, ds in given:
            found += self._finite(ds, role)
            found += self._duplicates(ds, role)
            found += self._range(ds, role, bounds)
        main = given[0][1]  # the training data, or the test data when it is all there is
        found += self._imbalance(main, target.test if target.train is not None else None)
        if target.train is not None and target.test is not None:
            found += self._leakage(target.train, target.test)
            found += self._test_range(target.train, target.test)
        found += self._constant(main)
        found += self._outliers(main, ctx.seed)
        return found

    def _finite(self, ds: Dataset, role: str) -> list[Finding]:
        bad = ~np.isfinite(ds.x.reshape(len(ds), -1))
        if not bad.any():
            return []
        rows = np.flatnonzero(bad.any(axis=1))
        per_feature = bad.sum(axis=0)
        worst = [c for c in np.argsort(-per_feature, kind="stable")[:_TOP] if per_feature[c]]
        return [self._f(
            f"non-finite-{role}", f"{len(rows)} {role} rows hold NaN or inf values",
            Severity.MEDIUM,
            metrics=[Metric(name="rows", value=len(rows), unit="rows"),
                     Metric(name="cells", value=int(bad.sum()), unit="cells"),
                     Metric(name="features affected", value=int((per_feature > 0).sum()),
                            unit="features")],
            evidence={"dataset": role, "rows": rows[:_TOP].tolist(),
                      "per_feature": {_feature(ds, int(c)): int(per_feature[c]) for c in worst}},
            recommendation="Fix the source of the missing values; impute explicitly and "
                           "record it, or drop the rows.",
        )]

    def _duplicates(self, ds: Dataset, role: str) -> list[Finding]:
        groups: dict[bytes, list[int]] = defaultdict(list)
        for i, h in enumerate(_row_hashes(ds.x)):
            groups[h].append(i)
        dup_groups = [g for g in groups.values() if len(g) > 1]
        n_dup = sum(len(g) - 1 for g in dup_groups)
        found: list[Finding] = []
        if ds.y is not None:
            y = ds.y
            conflicts = [g for g in dup_groups if len({int(y[i]) for i in g}) > 1]
            if conflicts:
                found.append(self._f(
                    f"conflicting-labels-{role}",
                    f"{len(conflicts)} identical {role} samples carry different labels",
                    Severity.MEDIUM,
                    metrics=[Metric(name="groups", value=len(conflicts), unit="groups")],
                    evidence={"dataset": role, "groups": [g[:10] for g in conflicts[:_TOP]]},
                    description="The same input with two labels is label noise at best and "
                                "label flipping at worst.",
                    recommendation="Review these rows; run `bastion data audit` to look for "
                                   "label errors and poisoning.",
                ))
        fraction = n_dup / max(len(ds), 1)
        if n_dup:
            many = fraction >= self.duplicate_fraction
            found.append(self._f(
                f"duplicates-{role}",
                f"{n_dup} {role} rows ({fraction:.1%}) repeat an earlier row exactly",
                Severity.LOW if many else Severity.INFO,
                metrics=[Metric(name="duplicate rows", value=n_dup, unit="rows"),
                         Metric(name="duplicate fraction", value=fraction, unit="ratio")],
                evidence={"dataset": role, "groups": [g[:10] for g in dup_groups[:_TOP]]},
                recommendation="Deduplicate before splitting, so no sample is weighted twice "
                               "or lands on both sides of a split." if many else "",
            ))
        return found

    def _imbalance(self, ds: Dataset, test: Dataset | None) -> list[Finding]:
        if ds.y is None or len(ds.y) == 0:
            return []
        n_classes = max(ds.n_classes or 0, int(ds.y.max()) + 1)
        counts = np.bincount(ds.y, minlength=n_classes)
        labels = list(ds.class_names) if len(ds.class_names) == n_classes else \
            [str(c) for c in range(n_classes)]
        present = counts[counts > 0]
        ratio = float(present.max() / present.min())
        severity = Severity.MEDIUM if ratio >= self.imbalance_medium else \
            Severity.LOW if ratio >= self.imbalance_low else Severity.INFO
        series = [Series(name="train" if test is not None else "data", x=labels,
                         y=counts.astype(float).tolist())]
        if test is not None and test.y is not None:
            test_counts = np.bincount(test.y, minlength=n_classes)[:n_classes]
            series.append(Series(name="test", x=labels, y=test_counts.astype(float).tolist()))
        chart = Chart(title="Samples per class", kind="bar", x_label="class",
                      y_label="samples", series=series)
        found = [self._f(
            "class-balance", f"Largest class is {ratio:.1f}x the smallest", severity,
            metrics=[Metric(name="imbalance ratio", value=ratio, unit="ratio"),
                     Metric(name="classes", value=int((counts > 0).sum()), unit="classes")],
            evidence={"counts": dict(zip(labels, counts.tolist(), strict=True))},
            charts=[chart],
            recommendation="Reweight or resample the classes and report per-class metrics."
            if severity > Severity.INFO else "",
        )]
        if test is not None and test.y is not None:
            missing = sorted(set(np.flatnonzero(counts).tolist()) - set(test.y.tolist()))
            if missing:
                found.append(self._f(
                    "test-missing-classes", f"{len(missing)} classes never appear in the test set",
                    Severity.LOW, evidence={"classes": [labels[c] for c in missing]},
                    recommendation="Use a stratified split so every class is evaluated.",
                ))
        return found

    def _leakage(self, train: Dataset, test: Dataset) -> list[Finding]:
        if train.sample_shape != test.sample_shape:
            return []
        seen: dict[bytes, int] = {}
        for i, h in enumerate(_row_hashes(train.x)):
            seen.setdefault(h, i)
        pairs = [(i, seen[h]) for i, h in enumerate(_row_hashes(test.x)) if h in seen]
        if not pairs:
            return []
        rows = [i for i, _ in pairs]
        fraction = len(rows) / len(test)
        relabelled = 0 if train.y is None or test.y is None else \
            sum(int(test.y[i] != train.y[j]) for i, j in pairs)
        return [self._f(
            "train-test-overlap", f"{len(rows)} test samples also appear in the training data",
            Severity.HIGH if fraction >= 0.10 else Severity.MEDIUM,
            metrics=[Metric(name="overlap", value=len(rows), unit="rows"),
                     Metric(name="overlap fraction", value=fraction, unit="ratio"),
                     Metric(name="overlap with another label", value=relabelled, unit="rows")],
            evidence={"test_rows": rows[:_TOP],
                      "train_rows": [j for _, j in pairs[:_TOP]]},
            description="Leaked test samples make accuracy and robustness look better than "
                        "they are, and they hide membership-inference risk.",
            recommendation="Deduplicate across the split and re-evaluate on clean held-out "
                           "data.",
        )]

    def _range(self, ds: Dataset, role: str, bounds: tuple[float, float]) -> list[Finding]:
        if ds.kind != "image":
            return []
        lo, hi = bounds
        with np.errstate(invalid="ignore"):
            outside = (ds.x < lo) | (ds.x > hi)  # NaN compares False: reported above
        n_out = int(outside.sum())
        if not n_out:
            return []
        rows = np.flatnonzero(outside.reshape(len(ds), -1).any(axis=1))
        return [self._f(
            f"image-range-{role}", f"{n_out} {role} pixel values lie outside [{lo:g}, {hi:g}]",
            Severity.LOW,
            metrics=[Metric(name="values outside", value=n_out, unit="values"),
                     Metric(name="rows affected", value=len(rows), unit="rows")],
            evidence={"dataset": role, "rows": rows[:_TOP].tolist(), "bounds": [lo, hi]},
            recommendation=f"Scale images to [{lo:g}, {hi:g}] before training and attacking; "
                           "attack budgets assume that range.",
        )]

    def _test_range(self, train: Dataset, test: Dataset) -> list[Finding]:
        if train.kind != "tabular" or train.sample_shape != test.sample_shape:
            return []
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(train.x, axis=0), np.nanmax(train.x, axis=0)
            outside = (test.x < lo) | (test.x > hi)
        # iid samples put about 2/(n+1) of test values outside the training range;
        # a feature is flagged only when several times that many are.
        cols = np.flatnonzero(outside.mean(axis=0) > self.drift_fraction)
        if not len(cols):
            return []
        names = [_feature(train, int(c)) for c in cols]
        return [self._f(
            "test-out-of-range", f"{len(cols)} features take test values outside the "
            "training range", Severity.LOW,
            metrics=[Metric(name="rows affected", value=int(outside.any(axis=1).sum()),
                            unit="rows")],
            evidence={"features": names[:_TOP]},
            recommendation="Check for drift between the training and the test data.",
        )]

    def _constant(self, ds: Dataset) -> list[Finding]:
        flat = ds.x.reshape(len(ds), -1)
        with np.errstate(invalid="ignore"):
            constant = np.flatnonzero(np.nanstd(flat, axis=0) == 0)
        if not len(constant):
            return []
        names = [_feature(ds, int(c)) for c in constant[:_TOP]]
        return [self._f(
            "constant-features", f"{len(constant)} features never change", Severity.INFO,
            metrics=[Metric(name="constant features", value=len(constant), unit="features")],
            evidence={"features": names},
            recommendation="Drop constant tabular features; on images they are usually blank "
                           "borders.",
        )]

    def _outliers(self, ds: Dataset, seed: int) -> list[Finding]:
        from sklearn.ensemble import IsolationForest

        flat = ds.x.reshape(len(ds), -1).astype(np.float64)
        keep = np.flatnonzero(np.isfinite(flat).all(axis=1))
        if len(keep) < 20:
            return []
        rng = np.random.default_rng(seed)
        fit_rows = keep if len(keep) <= _MAX_OUTLIER_ROWS else \
            np.sort(rng.choice(keep, _MAX_OUTLIER_ROWS, replace=False))
        forest = IsolationForest(n_estimators=100, random_state=seed).fit(flat[fit_rows])
        scores = forest.score_samples(flat[keep])
        q1, q3 = np.percentile(scores, [25, 75])
        anomalous = keep[scores < q1 - 1.5 * (q3 - q1)]  # Tukey's lower fence
        fraction = len(anomalous) / len(keep)
        worst = keep[np.argsort(scores)[:_TOP]]
        return [self._f(
            "outliers", f"{fraction:.1%} of the rows look anomalous (IsolationForest)",
            Severity.LOW if fraction > self.outlier_fraction else Severity.INFO,
            metrics=[Metric(name="anomalous rows", value=len(anomalous), unit="rows"),
                     Metric(name="anomalous fraction", value=fraction, unit="ratio")],
            evidence={"most_anomalous_rows": worst.tolist()},
            charts=[Chart(title="IsolationForest anomaly score (higher is more normal)",
                          kind="hist", x_label="score", y_label="rows",
                          series=[Series(name="rows", x=[], y=scores.tolist())])],
            recommendation="Look at the most anomalous rows first; run `bastion data audit` "
                           "for poisoning detectors." if fraction > self.outlier_fraction
            else "",
        )]
