"""Neural Cleanse (Wang et al., IEEE S&P 2019): reverse-engineer a trigger per class.

For each label ``t`` find the smallest trigger that sends clean inputs to ``t``: a mask
``m`` in [0, 1] and a pattern ``p`` inside the model's bounds, applied as
``x' = (1 - m) * x + m * p``, by minimising ``CE(f(x'), t) + lambda_t * |m|_1`` with Adam
(mask and pattern parameterised through ``tanh`` as in the authors' code). A backdoored
label needs a much smaller mask than the others: the trigger is a shortcut.

``lambda_t`` follows the paper's schedule: it starts at 0 and is set to ``init_cost``
once the trigger has held ``success_threshold`` attack success for ``patience``
consecutive steps; afterwards, every
``patience`` consecutive steps at or above that success multiply it by
``cost_multiplier``, and ``patience`` steps below divide it by ``cost_multiplier ** 1.5``.
The trigger kept for a label is the one with the smallest mask L1 norm among those that
reached the success threshold (else the last one).

The anomaly index of label ``t`` is ``|L1_t - median| / (1.4826 * MAD)`` over the
labels' mask norms (MAD: median absolute deviation; 1.4826 makes it consistent with a
normal's standard deviation). Labels *below* the median with an index above
``anomaly_threshold`` (2, the paper's choice: > 95 % probability of being an outlier) are
flagged as backdoor targets.

All labels are optimised together, one batch of ``n_classes * n_samples`` inputs per
step; the steps budget is the run time knob.

:func:`trigger_carriers` turns a flagged label into flagged rows: a training row labelled
with that label carries the trigger when taking the reversed trigger away (its masked
part replaced by the other classes' median) makes the model stop predicting the label.
This input-space filter stands in for the paper's neuron-activation filter, which needs
access to internal layers that a :class:`~bastion.typing.Classifier` does not expose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.detection.poisoning._masked_vote import trigger_vote
from bastion.detection.poisoning._result import Detection
from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.models.adapt import require_differentiable
from bastion.typing import Classifier

__all__ = ["NeuralCleanse", "TriggerReport", "anomaly_index", "trigger_carriers"]

_MAD_CONSISTENCY = 1.4826


def anomaly_index(norms: np.ndarray) -> np.ndarray:
    """``|norm - median| / (1.4826 * MAD)`` per label; 0 everywhere when MAD is 0."""
    median = float(np.median(norms))
    mad = _MAD_CONSISTENCY * float(np.median(np.abs(norms - median)))
    if mad <= 0:
        return np.zeros(len(norms))
    return np.asarray(np.abs(norms - median) / mad)


@dataclass(frozen=True, kw_only=True)
class TriggerReport:
    """One reversed trigger per label, its mask L1 norm, success and anomaly index."""

    masks: np.ndarray
    patterns: np.ndarray
    l1_norms: np.ndarray
    success: np.ndarray
    anomaly: np.ndarray
    flagged: np.ndarray
    threshold: str

    @property
    def targets(self) -> np.ndarray:
        """Labels flagged as backdoor targets, most anomalous first."""
        idx = np.flatnonzero(self.flagged)
        return idx[np.argsort(-self.anomaly[idx], kind="stable")]


def _mask_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """One mask shared by every channel of a ``(C, H, W)`` image, as the paper does."""
    return (1, *input_shape[1:]) if len(input_shape) == 3 else input_shape


@dataclass(frozen=True, kw_only=True)
class NeuralCleanse:
    """Reverse-engineer a minimal trigger per label; flag labels with anomalously small masks."""

    steps: int = 300
    n_samples: int = 200
    lr: float = 0.1
    init_cost: float = 1e-3
    success_threshold: float = 0.99
    patience: int = 5
    cost_multiplier: float = 1.5
    anomaly_threshold: float = 2.0
    seed: int = 0

    def __call__(self, model: Classifier, x: np.ndarray,
                 y: np.ndarray | None = None) -> TriggerReport:
        """Reverse triggers from the clean inputs ``x`` (labels ``y`` optional).

        With ``y``, label ``t``'s trigger is fit on rows not labelled ``t``.
        """
        import torch

        net = require_differentiable(model, "Neural Cleanse")
        shape = tuple(model.input_shape)
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != shape:
            if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
                raise ShapeMismatchError(f"inputs of shape {x.shape[1:]} do not fit the model's "
                                         f"input shape {shape}; pass its --input-shape")
            x = x.reshape(len(x), *shape)
        if len(x) < 2 or not np.isfinite(x).all():
            raise InvalidDataError("Neural Cleanse needs at least two finite clean inputs")
        k = model.n_classes
        rng = np.random.default_rng(self.seed)
        rows = np.stack([self._rows(rng, len(x), None if y is None else np.asarray(y) != t)
                         for t in range(k)])
        device = net.device
        lo, hi = model.bounds
        batch = torch.as_tensor(x[rows], device=device)  # (k, n, *shape)
        gen = torch.Generator().manual_seed(self.seed)
        mask_raw = (torch.rand((k, *_mask_shape(shape)), generator=gen) * 2 - 1).to(device)
        pattern_raw = (torch.rand((k, *shape), generator=gen) * 2 - 1).to(device)
        mask_raw.requires_grad_(True)
        pattern_raw.requires_grad_(True)
        opt = torch.optim.Adam([mask_raw, pattern_raw], lr=self.lr, betas=(0.5, 0.9))
        targets = torch.arange(k, device=device).repeat_interleave(batch.shape[1])
        cost = torch.zeros(k, device=device)
        up = torch.zeros(k, dtype=torch.long, device=device)
        waiting = torch.zeros(k, dtype=torch.long, device=device)
        down = torch.zeros(k, dtype=torch.long, device=device)
        best_l1 = torch.full((k,), float("inf"), device=device)
        best_mask = torch.zeros_like(mask_raw)
        best_pattern = torch.zeros_like(pattern_raw)
        best_success = torch.zeros(k, device=device)
        for _ in range(self.steps):
            mask = (torch.tanh(mask_raw) + 1) / 2
            pattern = lo + (hi - lo) * (torch.tanh(pattern_raw) + 1) / 2
            m = mask.unsqueeze(1)
            stamped = (1 - m) * batch + m * pattern.unsqueeze(1)
            logits = net.logits(stamped.reshape(-1, *shape))
            ce = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            l1 = mask.reshape(k, -1).sum(dim=1)
            loss = (ce.reshape(k, -1).mean(dim=1) + cost * l1).sum()
            opt.zero_grad()
            torch.autograd.backward(loss)
            opt.step()
            with torch.no_grad():
                success = (logits.argmax(dim=1) == targets).float().reshape(k, -1).mean(dim=1)
                ok = success >= self.success_threshold
                better = ok & (l1 < best_l1)
                best_l1 = torch.where(better, l1, best_l1)
                best_mask[better] = mask[better]
                best_pattern[better] = pattern[better]
                best_success = torch.where(better, success, best_success)
                started = cost > 0
                waiting = torch.where(~started & ok, waiting + 1, torch.zeros_like(waiting))
                begin = waiting >= self.patience
                cost = torch.where(begin, torch.full_like(cost, self.init_cost), cost)
                up = torch.where(started & ok, up + 1, torch.zeros_like(up))
                down = torch.where(started & ~ok, down + 1, torch.zeros_like(down))
                raise_ = up >= self.patience
                lower = down >= self.patience
                cost = torch.where(raise_, cost * self.cost_multiplier, cost)
                cost = torch.where(lower, cost / self.cost_multiplier ** 1.5, cost)
                up[raise_] = 0
                down[lower] = 0
                never = torch.isinf(best_l1)
                best_mask[never] = mask[never]
                best_pattern[never] = pattern[never]
                best_success = torch.where(never, success, best_success)
        masks = best_mask.detach().cpu().numpy()
        norms = masks.reshape(k, -1).sum(axis=1)
        index = anomaly_index(norms)
        flagged = (norms < np.median(norms)) & (index > self.anomaly_threshold)
        return TriggerReport(
            masks=masks, patterns=best_pattern.detach().cpu().numpy(), l1_norms=norms,
            success=best_success.detach().cpu().numpy(), anomaly=index, flagged=flagged,
            threshold=f"mask L1 below the median with anomaly index > "
                      f"{self.anomaly_threshold:g} (MAD-based)")

    def _rows(self, rng: np.random.Generator, n: int, eligible: np.ndarray | None) -> np.ndarray:
        """``n_samples`` row indices drawn from the eligible rows (with replacement if few)."""
        pool = np.arange(n) if eligible is None or not eligible.any() else np.flatnonzero(eligible)
        return rng.choice(pool, size=self.n_samples, replace=len(pool) < self.n_samples)


def trigger_carriers(model: Classifier, x: np.ndarray, y: np.ndarray,
                     report: TriggerReport, k: int = 10,
                     min_carried: float = 0.5) -> Detection:
    """Rows of a flagged label that need its reversed trigger to keep that label.

    Two tests, both needed: the model stops predicting the label once the trigger is
    removed (its masked part replaced by the other classes' median), and the row's ``k``
    nearest rows, compared outside the trigger's features (mask >= 0.5), mostly carry
    other labels (``_masked_vote``). The first alone also takes honest rows when the
    reversed "trigger" is part of what the class looks like (a stroke of a 1); those
    keep neighbours of their own class; when fewer than ``min_carried`` of the rows that
    leave the label pass the second test, the label's "trigger" is taken for a feature of
    the class and none of its rows is flagged. The score is how much probability of its
    label a row loses when the trigger is removed (0 for rows of labels not flagged).
    """
    shape = tuple(model.input_shape)
    x = np.asarray(x, dtype=np.float32).reshape(len(x), *shape)
    flat = x.reshape(len(x), -1).astype(np.float64)
    y = np.asarray(y)
    scores = np.zeros(len(x))
    flagged = np.zeros(len(x), dtype=bool)
    for t in report.targets:
        rows = np.flatnonzero(y == t)
        if len(rows) == 0 or (y != t).sum() == 0:
            continue
        mask = report.masks[t]
        reference = np.median(x[y != t], axis=0)
        removed = ((1 - mask) * x[rows] + mask * reference).astype(np.float32)
        before = np.asarray(model.predict_proba(x[rows]))[:, t]
        after = np.asarray(model.predict_proba(removed))
        scores[rows] = before - after[:, t]
        leaves = rows[after.argmax(axis=1) != t]
        if len(leaves) == 0:
            continue
        keep = np.broadcast_to(mask, shape).reshape(-1) < 0.5
        _, caught = trigger_vote(flat, y, keep, leaves, k, min_carried)
        flagged[leaves[caught]] = True
    return Detection(scores=scores, flagged=flagged,
                     threshold="labelled with a Neural Cleanse target, no longer predicted as "
                               "it once the reversed trigger is removed, and mostly "
                               "neighbours of other labels outside the trigger's features")
