"""Defensive distillation: a student as accurate as its teacher whose softmax saturates at
T=1, flagged as gradient masking, with an adaptive view that undoes the masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bastion.attacks.evasion.pgd import PGD
from bastion.data import Dataset
from bastion.defenses import HardenResult
from bastion.defenses.distillation import DefensiveDistillation
from bastion.errors import ConfigError
from bastion.models.torch import TorchClassifier


@pytest.fixture(scope="module")
def distilled(plain_cnn: TorchClassifier, digits: tuple[Dataset, Dataset]) -> HardenResult:
    return DefensiveDistillation(temperature=20, epochs=6).apply(plain_cnn, digits[0], seed=0)


def test_student_learns_the_task_and_saturates_at_t1(
    distilled: HardenResult, digits: tuple[Dataset, Dataset],
) -> None:
    test = digits[1]
    probs = distilled.model.predict_proba(test.x)
    assert float((probs.argmax(1) == test.y).mean()) > 0.75
    assert float(np.median(probs.max(1))) > 0.999  # trained at T=20, deployed at T=1
    assert distilled.masks_gradients and distilled.metrics["temperature"] == 20.0
    assert [row["stage"] for row in distilled.log] == [0.0] * 6 + [1.0] * 6


def test_adaptive_view_divides_logits_by_t_and_keeps_predictions(
    distilled: HardenResult, digits: tuple[Dataset, Dataset],
) -> None:
    (label, view), = distilled.adaptive
    assert "T=20" in label
    x = torch.as_tensor(digits[1].x[:50])
    assert isinstance(distilled.model, TorchClassifier)
    torch.testing.assert_close(view.logits(x), distilled.model.logits(x) / 20)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(view.predict_proba(digits[1].x[:50]).argmax(1),
                                  distilled.model.predict_proba(digits[1].x[:50]).argmax(1))


def test_plain_pgd_overestimates_robustness_and_the_adaptive_view_shows_it(
    distilled: HardenResult, digits: tuple[Dataset, Dataset],
) -> None:
    test = digits[1]
    assert test.y is not None

    def robust(model: object) -> float:
        return PGD(eps=0.15, steps=20)(model, test.x[:200], test.y[:200],  # type: ignore[arg-type]
                                       generator=torch.Generator().manual_seed(0)
                                       ).robust_accuracy

    _, view = distilled.adaptive[0]
    assert robust(distilled.model) > robust(view) + 0.1


def test_temperature_below_one_is_refused(plain_cnn: TorchClassifier,
                                          small_train: Dataset) -> None:
    with pytest.raises(ConfigError, match="temperature must be >= 1"):
        DefensiveDistillation(temperature=0.5).apply(plain_cnn, small_train)
