"""The ensemble is at least as strong as each of its parts, per sample."""

from __future__ import annotations

import torch

from bastion.attacks import ATTACKS

from ..conftest import TorchNet


def test_ensemble_is_at_most_each_part(digits_cnn) -> None:
    model, x, y = digits_cnn
    x, y = x[:40], y[:40]
    ensemble = ATTACKS.get("autoattack")(eps=0.07, steps=6, n_target_classes=2,
                                         max_queries=40)
    result = ensemble(model, x, y)
    first, *rest = ensemble.parts(10)
    # The first part sees the same seed alone and in the ensemble: per-sample worst case.
    alone = first(model, x, y)
    assert not bool((alone.success & ~result.success).any())
    for part in [first, *rest]:
        assert result.robust_accuracy <= part(model, x, y).robust_accuracy


def test_binary_models_skip_apgd_t() -> None:
    ensemble = ATTACKS.get("autoattack")(eps=0.1)
    assert [type(a).__name__ for a in ensemble.parts(2)] == ["APGDCE", "FABT", "Square"]
    assert [type(a).__name__ for a in ensemble.parts(10)] == ["APGDCE", "APGDT", "FABT",
                                                              "Square"]
    net = torch.nn.Sequential(torch.nn.Linear(5, 2))
    model = TorchNet(net, (5,), 2)
    x = torch.rand(8, 5)
    y = torch.as_tensor(model.predict_proba(x.numpy()).argmax(1))
    result = ATTACKS.get("autoattack")(eps=0.1, steps=5, max_queries=20)(model, x, y)
    assert result.x_adv.shape == x.shape
