import numpy as np
import pytest
import torch

from bastion.attacks.evasion.pgd import PGD
from bastion.detection.adversarial_input import FeatureSqueezing, bit_depth, median_smoothing
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.models.torch import TorchClassifier

Digits = tuple[TorchClassifier, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def test_fpr_on_held_out_clean_digits_is_the_documented_rate(digits: Digits) -> None:
    model, _, _, test_x, _ = digits
    calibration, held_out = test_x[:200], test_x[200:]
    detector = FeatureSqueezing(bits=4, median_size=None, fpr=0.05).fit(model, calibration)
    _, flagged = detector(model, held_out)
    # 250 held-out clean inputs at a 5 % target: a binomial 99 % bound is 10 %.
    assert flagged.mean() <= 0.10


def test_pgd_examples_are_detected(digits: Digits) -> None:
    model, _, _, test_x, test_y = digits
    detector = FeatureSqueezing(bits=4, median_size=None, fpr=0.05).fit(model, test_x[:200])
    result = PGD(eps=0.1, steps=20)(model, test_x[200:], test_y[200:],
                                    generator=torch.Generator().manual_seed(0))
    adversarial = result.x_adv.numpy()[result.success.numpy()]
    assert len(adversarial) > 150
    _, flagged = detector(model, adversarial)
    assert flagged.mean() >= 0.6  # measured 0.82 against 0.04 on clean inputs


def test_given_probabilities_save_a_model_call(digits: Digits) -> None:
    model, _, _, test_x, _ = digits
    config = FeatureSqueezing()
    x = test_x[:10]
    proba = model.predict_proba(x)
    before = model.n_queries
    scores = config.scores(model, x, proba)
    assert model.n_queries - before == len(x)  # only the squeezed copy is asked
    assert np.allclose(scores, config.scores(model, x))


def test_bit_depth_rounds_to_levels_inside_bounds() -> None:
    x = np.array([[-1.0, 0.0, 0.49, 0.51, 1.0, 2.0]], dtype=np.float32)
    assert bit_depth(1)(x, (0.0, 1.0)).tolist() == [[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]
    assert bit_depth(1)(np.array([[2.0, 9.0]]), (2.0, 10.0)).tolist() == [[2.0, 10.0]]


def test_median_smoothing_removes_an_isolated_pixel_and_skips_tables() -> None:
    image = np.zeros((1, 1, 5, 5))
    image[0, 0, 2, 2] = 1.0
    assert median_smoothing(3)(image, (0.0, 1.0)).max() == 0.0
    table = np.arange(6.0).reshape(2, 3)
    assert median_smoothing(3)(table, (0.0, 10.0)) is table


@pytest.mark.parametrize("kwargs", [{"fpr": 0.0}, {"bits": 0}, {"median_size": 1},
                                    {"bits": None, "median_size": None}])
def test_bad_parameters_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        FeatureSqueezing(**kwargs)  # type: ignore[arg-type]


def test_bad_inputs(digits: Digits) -> None:
    model, _, _, test_x, _ = digits
    with pytest.raises(InvalidDataError):
        FeatureSqueezing().fit(model, test_x[:1])
    with pytest.raises(ShapeMismatchError):
        FeatureSqueezing().scores(model, np.zeros((3, 64), dtype=np.float32))
