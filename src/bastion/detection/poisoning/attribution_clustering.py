"""Attribution clustering: find dirty-label backdoor rows through what the model looks at.

A backdoored model labels a poisoned row ``t`` because of the trigger, a genuine ``t``
because of what a ``t`` looks like; their attributions (gradient times input of the
label's centred logit, Shrikumar et al. 2016, scaled to unit length) fall apart where their
inputs and activations need not. Per class this detector

1. reduces the attributions to ``n_components`` with PCA and splits them with 2-means
   (the clustering step of activation clustering, Chen et al. 2018, on attributions);
2. takes as the candidate the cluster whose lead over the other is the more
   concentrated: the share of its positive mean-attribution difference (squared) in its
   top tenth of features. A trigger is a few features; an honest sub-style is a shape;
3. names the candidate's *trigger support*: the fewest features that carry
   ``support_mass`` of that positive difference, at most ``max_support`` of all;
4. asks each candidate row's ``k`` nearest rows of the whole dataset, compared on every
   feature *except* the support, for their labels (``_masked_vote``). Without its
   trigger a poisoned row is an ordinary row of its source class, so most neighbours
   disagree with its label; an honest sub-style keeps neighbours of its own class.

The class is poisoned when at least ``min_relabel`` of the candidate's rows lose their
label that way. Then the support grows by every feature where those rows differ from
their nearest rows of other classes by at least half the largest such difference (the
attributions may name only part of a trigger), and the vote is repeated without the rows
already caught (poison from the same source class otherwise vouches for itself) until no
new row is caught; the caught rows are flagged. Neither cluster size nor silhouette decides, so
the rule holds when the poison is half of its target class (10 % BadNets on digits),
where the smaller-cluster rule of activation clustering fails. Chen et al.'s exclusionary
reclassification asks the same question by retraining without a cluster; that fails for
the target class (without its genuine rows the model learns "t = trigger"), and leaving a
cluster out of the neighbour search fails for honest sub-styles (their nearest rows are
gone). Masking the trigger and keeping every row is what separates the two.

Measured on digits and breast cancer (benchmarks/poisoning): clean classes lose their
label for at most 27 % of candidate rows, BadNets targets for 63-100 % at 5-10 % poison
and every target class. It needs a model with gradients; on raw features with large
offsets gradient times input is dominated by scale, so give it the inputs the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from bastion.detection.poisoning._masked_vote import trigger_vote
from bastion.detection.poisoning._result import Detection, check_inputs
from bastion.errors import ConfigError
from bastion.models.adapt import require_differentiable
from bastion.typing import Classifier

__all__ = ["AttributionClustering", "attributions"]

_MIN_CLASS_ROWS = 10


def attributions(model: Classifier, x: np.ndarray, y: np.ndarray,
                 batch_size: int = 512) -> np.ndarray:
    """Gradient times input of each row's labelled logit, flattened, scaled to unit length.

    Logits are centred first: softmax ignores a shift shared by all classes, so a model
    may put class 0's logit at a constant 0 (binary scikit-learn models do), which would
    give that class no gradient at all.
    """
    import torch

    net = require_differentiable(model, "attribution clustering")
    rows = np.asarray(x, dtype=np.float32).reshape((len(x), *model.input_shape))
    out = np.empty((len(rows), int(np.prod(model.input_shape))))
    for start in range(0, len(rows), batch_size):
        xb = torch.as_tensor(rows[start:start + batch_size], device=net.device)
        xb.requires_grad_(True)
        labels = torch.as_tensor(y[start:start + batch_size], device=net.device)
        logits = net.logits(xb)
        centred = logits - logits.mean(dim=1, keepdim=True)
        chosen = centred.gather(1, labels[:, None].long()).sum()
        (grad,) = torch.autograd.grad(chosen, xb)
        out[start:start + len(xb)] = (grad * xb).detach().cpu().numpy().reshape(len(xb), -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norms, 1e-12))


def _concentration(lead: np.ndarray) -> float:
    """Share of the squared positive ``lead`` held by its top tenth of features."""
    mass = np.clip(lead, 0.0, None) ** 2
    top = max(1, round(0.1 * len(mass)))
    return float(np.sort(mass)[::-1][:top].sum() / max(float(mass.sum()), 1e-12))


@dataclass(frozen=True, kw_only=True)
class AttributionClustering:
    """Per class: 2-means on attributions, then a trigger-masked neighbour vote."""

    n_components: int = 10
    support_mass: float = 0.9
    max_support: float = 0.25
    k: int = 10
    min_relabel: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.support_mass <= 1 or not 0 < self.max_support <= 1:
            raise ConfigError("support_mass and max_support are shares in (0, 1]")
        if not 0 < self.min_relabel <= 1 or self.k < 1:
            raise ConfigError("min_relabel is a share in (0, 1] and k at least 1")

    def _support(self, lead: np.ndarray) -> np.ndarray:
        """The fewest features carrying ``support_mass`` of the positive ``lead``."""
        mass = np.clip(lead, 0.0, None)
        order = np.argsort(-mass, kind="stable")
        share = np.cumsum(mass[order]) / max(float(mass.sum()), 1e-12)
        size = min(int(np.searchsorted(share, self.support_mass)) + 1,
                   max(1, int(self.max_support * len(lead))))
        return order[:size]

    def __call__(self, model: Classifier, features: np.ndarray,
                 y: np.ndarray | None) -> Detection:
        x, labels = check_inputs(features, y)
        attr = attributions(model, np.asarray(features), labels)
        scores = np.zeros(len(x))
        flagged = np.zeros(len(x), dtype=bool)
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            if len(rows) < _MIN_CLASS_ROWS:
                continue
            a = attr[rows]
            dims = min(self.n_components, a.shape[1], len(rows) - 1)
            z = PCA(n_components=dims, random_state=self.seed).fit_transform(a - a.mean(0))
            split = KMeans(n_clusters=2, n_init=10, random_state=self.seed).fit_predict(z)
            if len(np.unique(split)) < 2:
                continue
            lead = a[split == 0].mean(0) - a[split == 1].mean(0)
            leads = (lead, -lead)  # what each cluster has more of than the other
            pick = int(np.argmax([_concentration(lead) for lead in leads]))
            candidate = rows[split == pick]
            keep = np.ones(x.shape[1], dtype=bool)
            keep[self._support(leads[pick])] = False
            disagree, caught = trigger_vote(x, labels, keep, candidate, self.k,
                                            self.min_relabel)
            scores[candidate] = disagree
            flagged[candidate[caught]] = True
        return Detection(scores=scores, flagged=flagged,
                         threshold=f"rows of a class's concentrated attribution cluster "
                                   f"whose {self.k} nearest rows, trigger features masked, "
                                   f"mostly carry another label, when at least "
                                   f"{self.min_relabel:.0%} of that cluster do")
