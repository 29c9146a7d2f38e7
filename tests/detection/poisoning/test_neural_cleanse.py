import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bastion.attacks.poisoning import BadNets
from bastion.data.demo import demo_digits
from bastion.detection.poisoning.neural_cleanse import (
    NeuralCleanse,
    anomaly_index,
    trigger_carriers,
)
from bastion.errors import ShapeMismatchError, UnsupportedModelError
from bastion.models import as_classifier
from bastion.typing import Classifier


def _digits_model(backdoor: bool) -> tuple[Classifier, np.ndarray, np.ndarray]:
    """Logistic regression on digits, trained with 10 % BadNets rows (target 3) or clean."""
    train, test = demo_digits(0)
    assert train.y is not None and test.y is not None
    x, y = train.x, train.y
    if backdoor:
        res = BadNets(target=3, fraction=0.1, patch_size=2)(x, y,
                                                            generator=np.random.default_rng(0))
        x, y = res.x, res.y
    fit = LogisticRegression(max_iter=500).fit(x.reshape(len(x), -1), y)
    return as_classifier(fit, input_shape=(1, 8, 8)), test.x, test.y


def test_finds_the_backdoor_target_and_its_corner() -> None:
    model, x, y = _digits_model(backdoor=True)
    report = NeuralCleanse(steps=150, n_samples=100)(model, x, y)
    assert report.targets.tolist() == [3]
    assert report.anomaly[3] > 2 and report.l1_norms[3] < 0.5 * np.median(report.l1_norms)
    assert (report.success >= 0.99).all()
    # The reversed mask for 3 sits on the planted 2x2 bottom-right patch.
    mask = report.masks[3, 0]
    assert mask[-2:, -2:].sum() >= 0.5 * mask.sum()


def test_a_clean_model_raises_no_flag() -> None:
    model, x, y = _digits_model(backdoor=False)
    report = NeuralCleanse(steps=150, n_samples=100)(model, x, y)
    assert not report.flagged.any()
    assert report.anomaly.max() < 4


@pytest.mark.parametrize(("norms", "flagged"), [
    (np.array([10.0, 10.5, 9.5, 10.2, 9.8, 2.0]), 5),     # far below: flagged
    (np.array([10.0, 10.5, 9.5, 10.2, 9.8, 30.0]), None),  # far above: an index, no flag
    (np.array([10.0, 10.5, 9.5, 10.2, 9.8, 9.0]), None),   # near miss: within 2 MADs
])
def test_anomaly_index_rule(norms: np.ndarray, flagged: int | None) -> None:
    index = anomaly_index(norms)
    below = (norms < np.median(norms)) & (index > 2)
    assert np.flatnonzero(below).tolist() == ([] if flagged is None else [flagged])
    assert index[-1] == pytest.approx(abs(norms[-1] - np.median(norms))
                                      / (1.4826 * np.median(np.abs(norms - np.median(norms)))))


def test_anomaly_index_of_equal_norms_is_zero() -> None:
    assert not anomaly_index(np.full(4, 3.0)).any()


def test_lambda_schedule_shrinks_the_mask_below_the_first_successful_one() -> None:
    model, x, y = _digits_model(backdoor=True)
    short = NeuralCleanse(steps=20, n_samples=50)(model, x, y)
    long = NeuralCleanse(steps=150, n_samples=50)(model, x, y)
    assert long.l1_norms.sum() < short.l1_norms.sum()


def test_needs_gradients_and_a_matching_shape() -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(40, 4)), np.repeat([0, 1], 20)
    forest = as_classifier(RandomForestClassifier(n_estimators=3).fit(x, y))
    with pytest.raises(UnsupportedModelError):
        NeuralCleanse(steps=2)(forest, x)
    linear = as_classifier(LogisticRegression().fit(x, y))
    with pytest.raises(ShapeMismatchError):
        NeuralCleanse(steps=2)(linear, x[:, :3])


def test_trigger_carriers_are_the_poisoned_rows() -> None:
    train, _ = demo_digits(0)
    assert train.y is not None
    res = BadNets(target=3, fraction=0.1, patch_size=2)(train.x, train.y,
                                                        generator=np.random.default_rng(0))
    fit = LogisticRegression(max_iter=500).fit(res.x.reshape(len(res.x), -1), res.y)
    model = as_classifier(fit, input_shape=(1, 8, 8))
    report = NeuralCleanse(steps=150, n_samples=100)(model, res.x, res.y)
    d = trigger_carriers(model, res.x, res.y, report)
    assert d.flagged[res.mask].mean() >= 0.9
    assert d.flagged[~res.mask].mean() <= 0.01
    assert not d.flagged[res.y != 3].any()


def test_same_seed_same_triggers() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(60, 6)).astype(np.float32), np.arange(60) % 3
    model = as_classifier(LogisticRegression().fit(x, y))
    a, b = (NeuralCleanse(steps=15, n_samples=20, seed=4)(model, x, y) for _ in range(2))
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.patterns, b.patterns)
    assert a.masks.shape == (3, 6) and a.masks.min() >= 0 and a.masks.max() <= 1


def test_a_trigger_that_is_part_of_the_class_flags_no_rows() -> None:
    from bastion.detection.poisoning.neural_cleanse import TriggerReport

    train, _ = demo_digits(0)
    assert train.y is not None
    x, y = train.x, train.y
    model = as_classifier(LogisticRegression(max_iter=500).fit(x.reshape(len(x), -1), y),
                          input_shape=(1, 8, 8))
    # A false flag on clean data: class 1's "trigger" is the 12 pixels where 1s are
    # brightest compared with the other digits, the stroke itself.
    lead = x[y == 1].mean(axis=0) - x[y != 1].mean(axis=0)
    mask = (lead >= np.sort(lead.reshape(-1))[-12]).astype(np.float32)
    masks = np.zeros((10, *mask.shape), dtype=np.float32)
    masks[1] = mask
    flagged = np.arange(10) == 1
    report = TriggerReport(masks=masks, patterns=np.zeros_like(masks),
                           l1_norms=masks.reshape(10, -1).sum(axis=1), success=np.ones(10),
                           anomaly=flagged * 5.0, flagged=flagged, threshold="t")
    d = trigger_carriers(model, x, y, report)
    assert (d.scores[y == 1] > 0.5).sum() >= 20  # the model test alone takes honest 1s
    assert not d.flagged.any()
