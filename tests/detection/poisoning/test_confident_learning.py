import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bastion.attacks.poisoning import PoisonResult
from bastion.detection.poisoning import ConfidentLearning
from bastion.errors import ShapeMismatchError


def test_finds_flipped_labels(flipped: PoisonResult) -> None:
    d = ConfidentLearning()(flipped.x, flipped.y)
    assert roc_auc_score(flipped.mask, d.scores) >= 0.97
    assert d.flagged[flipped.mask].mean() >= 0.6
    assert d.flagged[~flipped.mask].mean() <= 0.02


def test_confident_joint_on_given_probabilities() -> None:
    # Class means of p_j: t_0 = 0.7, t_1 = 0.8; row 3 is labelled 0 but p_1 = 0.9 >= t_1.
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9],
                      [0.1, 0.9], [0.1, 0.9], [0.2, 0.8], [0.4, 0.6]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    d = ConfidentLearning()(np.zeros((8, 1)), y, proba=proba)
    np.testing.assert_array_equal(np.flatnonzero(d.flagged), [3])
    np.testing.assert_allclose(d.scores[3], 0.9)


def test_probability_shape_must_match() -> None:
    with pytest.raises(ShapeMismatchError):
        ConfidentLearning()(np.zeros((4, 1)), np.array([0, 1, 0, 1]), proba=np.ones((4, 3)))
