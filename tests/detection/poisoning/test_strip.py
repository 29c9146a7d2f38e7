import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from bastion.attacks.poisoning import BadNets
from bastion.data.demo import demo_digits
from bastion.detection.poisoning.strip import STRIP
from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.models import as_classifier
from bastion.typing import Classifier


@pytest.fixture(scope="module")
def backdoored_model() -> tuple[Classifier, BadNets, np.ndarray, np.ndarray]:
    """A digits classifier trained on 10 % BadNets rows; returns model, attack, test x, y."""
    train, test = demo_digits(0)
    assert train.y is not None and test.y is not None
    attack = BadNets(target=0, fraction=0.1, patch_size=2)
    res = attack(train.x, train.y, generator=np.random.default_rng(0))
    fit = LogisticRegression(max_iter=300).fit(res.x.reshape(len(res.x), -1), res.y)
    model = as_classifier(fit, input_shape=(1, 8, 8))
    return model, attack, test.x, test.y


def test_triggered_inputs_are_flagged(
        backdoored_model: tuple[Classifier, BadNets, np.ndarray, np.ndarray]) -> None:
    model, attack, x, y = backdoored_model
    victims = x[y != 0][:100]
    triggered = attack.apply(victims)
    assert (model.predict_proba(triggered).argmax(axis=1) == 0).mean() >= 0.9  # backdoor works
    clean, held = x[y != 0][100:], victims
    d = STRIP(frr=0.05)(model, np.concatenate([triggered, held]), clean,
                        generator=np.random.default_rng(0))
    truth = np.r_[np.ones(len(triggered), bool), np.zeros(len(held), bool)]
    assert roc_auc_score(truth, d.scores) >= 0.95
    assert d.flagged[truth].mean() >= 0.8 and d.flagged[~truth].mean() <= 0.15


def test_bad_clean_inputs_raise(
        backdoored_model: tuple[Classifier, BadNets, np.ndarray, np.ndarray]) -> None:
    model, _, x, _ = backdoored_model
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidDataError):
        STRIP()(model, x[:5], x[:1], generator=rng)
    with pytest.raises(ShapeMismatchError):
        STRIP()(model, x[:5], x[:5, :, :4], generator=rng)
