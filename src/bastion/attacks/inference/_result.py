"""The result every membership-inference attack returns, and how it is measured.

Following Carlini et al. (2022, "Membership Inference Attacks From First Principles"),
an attack is judged by its true-positive rate at a low false-positive rate (0.1 % and
1 %), read off the full ROC curve, not by accuracy or AUC alone: an attack that
confidently identifies a few members is a real privacy breach even when its average
accuracy is near chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from bastion.errors import InvalidDataError, ShapeMismatchError

__all__ = ["MembershipResult", "measure", "tpr_at_fpr"]

_LOW_FPRS = (0.001, 0.01)


@dataclass(frozen=True, kw_only=True)
class MembershipResult:
    """Scores of one attack on a labelled member/non-member set, and what they reveal.

    ``scores`` are higher for records the attack believes were trained on;
    ``is_member`` is the ground truth. ``fpr``/``tpr`` is the ROC curve; ``tpr_at_fpr``
    maps 0.001 and 0.01 to the best TPR at or below that FPR; ``balanced_accuracy`` is
    that of the best single threshold; ``per_class_auc`` holds the AUC of each class
    that has both members and non-members; ``most_exposed`` lists the indices (into the
    evaluated records) of the members with the highest scores, most exposed first.
    """

    attack: str
    scores: np.ndarray
    is_member: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float
    tpr_at_fpr: dict[float, float]
    balanced_accuracy: float
    per_class_auc: dict[int, float]
    most_exposed: np.ndarray
    n_target_queries: int
    wall_time_s: float

    @property
    def n_members(self) -> int:
        return int(self.is_member.sum())

    @property
    def n_nonmembers(self) -> int:
        return int((~self.is_member).sum())

    def roc_points(self, n_points: int = 50) -> tuple[list[float], list[float]]:
        """ROC points on a log-spaced FPR grid, for drawing on log axes.

        The grid runs from ``1 / n_nonmembers`` (the smallest FPR the data can
        resolve) to 1, so a chart does not pretend to a resolution it lacks.
        """
        lo = 1.0 / max(self.n_nonmembers, 1)
        grid = np.unique(np.geomspace(lo, 1.0, n_points))
        return [float(f) for f in grid], [tpr_at_fpr(self.fpr, self.tpr, f) for f in grid]


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The highest TPR the ROC curve reaches without exceeding ``target`` FPR."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def measure(
    attack: str,
    scores: np.ndarray,
    is_member: np.ndarray,
    y: np.ndarray,
    *,
    n_exposed: int = 20,
    n_target_queries: int = 0,
    wall_time_s: float = 0.0,
) -> MembershipResult:
    """Turn per-record scores into a :class:`MembershipResult`."""
    scores = np.asarray(scores, dtype=np.float64)
    member = np.asarray(is_member, dtype=bool)
    labels = np.asarray(y)
    if not (scores.shape == member.shape == labels.shape) or scores.ndim != 1:
        raise ShapeMismatchError(
            f"scores {scores.shape}, membership {member.shape} and labels {labels.shape} "
            "must be 1-D and of one length"
        )
    if member.all() or not member.any():
        raise InvalidDataError(
            "membership inference needs both members and non-members; "
            "give the training data and held-out data the model never saw"
        )
    if not np.isfinite(scores).all():
        raise InvalidDataError("membership scores contain NaN or inf; check the model's outputs")
    fpr, tpr, _ = roc_curve(member, scores)
    # Best threshold: balanced accuracy = (TPR + TNR) / 2.
    balanced = float(np.max((tpr + 1.0 - fpr) / 2.0))
    per_class = {
        int(c): float(roc_auc_score(member[labels == c], scores[labels == c]))
        for c in np.unique(labels)
        if 0 < member[labels == c].sum() < (labels == c).sum()
    }
    members = np.flatnonzero(member)
    order = members[np.argsort(-scores[members], kind="stable")]
    return MembershipResult(
        attack=attack,
        scores=scores,
        is_member=member,
        fpr=fpr,
        tpr=tpr,
        auc=float(roc_auc_score(member, scores)),
        tpr_at_fpr={f: tpr_at_fpr(fpr, tpr, f) for f in _LOW_FPRS},
        balanced_accuracy=balanced,
        per_class_auc=per_class,
        most_exposed=order[:n_exposed],
        n_target_queries=n_target_queries,
        wall_time_s=wall_time_s,
    )
