"""APGD: the paper's checkpoints, at least PGD's strength, APGD-T over the top classes."""

from __future__ import annotations

import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.attacks.evasion.apgd import checkpoints
from bastion.errors import UnsupportedModelError

from ..conftest import TorchNet


def test_checkpoints_follow_the_paper_for_100_steps() -> None:
    # p = 0, .22, .41, .57, .7, .8, .87, .93, .99 (Croce & Hein 2020, Sec. 3.2)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


def test_apgd_ce_at_least_as_strong_as_pgd_same_budget(digits_cnn) -> None:
    model, x, y = digits_cnn
    x, y = x[:100], y[:100]
    pgd = ATTACKS.get("pgd")(eps=0.08, steps=20)(model, x, y)
    apgd = ATTACKS.get("apgd-ce")(eps=0.08, steps=20)(model, x, y)
    assert apgd.robust_accuracy <= pgd.robust_accuracy


def test_apgd_t_targets_top_classes_and_beats_apgd_ce(digits_cnn) -> None:
    model, x, y = digits_cnn
    x, y = x[:100], y[:100]
    ce = ATTACKS.get("apgd-ce")(eps=0.06, steps=20)(model, x, y)
    t = ATTACKS.get("apgd-t")(eps=0.06, steps=20, n_target_classes=3)(model, x, y)
    assert t.robust_accuracy <= ce.robust_accuracy + 0.01
    # Samples still robust after a target ran it n_target_classes times.
    robust = ~t.success
    assert bool((t.n_iterations[robust] == 60).all())


def test_dlr_needs_three_classes() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    model = TorchNet(net, (4,), 2)
    x = torch.rand(5, 4)
    with pytest.raises(UnsupportedModelError, match="at least 3 classes"):
        ATTACKS.get("apgd-dlr")(eps=0.1, steps=2)(model, x, model.predict_proba(
            x.numpy()).argmax(1))
