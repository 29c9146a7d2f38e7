import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from bastion.attacks.poisoning import FeatureCollision
from bastion.data.demo import demo_breast_cancer, demo_digits
from bastion.errors import InvalidDataError, UnsupportedModelError
from bastion.models import as_classifier
from bastion.typing import Classifier


@pytest.fixture(scope="module")
def digits_net() -> tuple[torch.nn.Module, Classifier]:
    """A 64-unit MLP on digits; returns its feature layer and the whole model."""
    train, _ = demo_digits(0)
    assert train.y is not None
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU())
    net = torch.nn.Sequential(body, torch.nn.Linear(64, 10))
    x, y = torch.tensor(train.x), torch.tensor(train.y)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        torch.autograd.backward(torch.nn.functional.cross_entropy(net(x), y))
        opt.step()
    return body, as_classifier(net, input_shape=(1, 8, 8))


def _head_prediction(body: torch.nn.Module, x: np.ndarray, y: np.ndarray,
                     target: np.ndarray) -> int:
    """Transfer learning as in the paper: refit the last layer on frozen features."""
    with torch.no_grad():
        feats, goal = body(torch.tensor(x)).numpy(), body(torch.tensor(target[None])).numpy()
    return int(LogisticRegression(max_iter=2000).fit(feats, y).predict(goal)[0])


def test_retrained_head_calls_the_target_the_base_class(
        digits_net: tuple[torch.nn.Module, Classifier]) -> None:
    body, model = digits_net
    train, test = demo_digits(0)
    assert train.y is not None and test.y is not None
    target = test.x[np.flatnonzero(test.y == 1)[0]]
    assert _head_prediction(body, train.x, train.y, target) == 1  # clean: right
    res = FeatureCollision(base_class=7, n_poisons=5, steps=500)(
        model, train.x, train.y, target, generator=np.random.default_rng(0), features=body)
    assert _head_prediction(body, res.x, res.y, target) == 7
    np.testing.assert_array_equal(res.y, train.y)  # clean label: no label touched
    assert (train.y[res.indices] == 7).all() and res.target == 7
    untouched = ~res.mask
    np.testing.assert_array_equal(res.x[untouched], train.x[untouched])
    with torch.no_grad():
        f = [body(torch.tensor(a)).numpy() for a in (res.x[res.indices],
                                                     train.x[res.indices], target[None])]
    ratio = np.linalg.norm(f[0] - f[2], axis=1) / np.linalg.norm(f[1] - f[2], axis=1)
    assert (ratio < 0.1).all()


def test_beta_keeps_poisons_near_their_base(
        digits_net: tuple[torch.nn.Module, Classifier]) -> None:
    body, model = digits_net
    train, test = demo_digits(0)
    assert train.y is not None and test.y is not None
    target, labels = test.x[np.flatnonzero(test.y == 1)[0]], train.y

    def input_share(beta0: float) -> float:
        res = FeatureCollision(base_class=7, n_poisons=3, beta0=beta0, steps=300)(
            model, train.x, labels, target, generator=np.random.default_rng(0), features=body)
        moved = np.linalg.norm((res.x - train.x)[res.indices].reshape(3, -1), axis=1)
        gap = np.linalg.norm((target - train.x[res.indices]).reshape(3, -1), axis=1)
        return float((moved / gap).mean())

    assert input_share(64.0) < 0.4 < input_share(0.25)


def test_tabular_poisons_collide_in_logit_space_within_bounds() -> None:
    train, test = demo_breast_cancer(0)
    assert train.y is not None and test.y is not None
    lo, span = train.x.min(axis=0), np.ptp(train.x, axis=0)
    x, xt = (train.x - lo) / span, np.clip((test.x - lo) / span, 0, 1)
    model = as_classifier(LogisticRegression(max_iter=2000).fit(x, train.y))
    target = xt[np.flatnonzero(test.y == 1)[0]]
    res = FeatureCollision(base_class=0, n_poisons=4, steps=300)(
        model, x, train.y, target, generator=np.random.default_rng(0))
    goal = model.predict_proba(target[None])
    assert np.abs(model.predict_proba(res.x[res.indices]) - goal).max() < 0.05
    assert res.x.min() >= 0 and res.x.max() <= 1
    np.testing.assert_array_equal(res.y, train.y)


def test_bad_requests_are_refused() -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(20, 3)), np.repeat([0, 1], 10)
    with pytest.raises(InvalidDataError):
        FeatureCollision(base_class=0, n_poisons=11)(
            as_classifier(LogisticRegression().fit(x, y)), x, y, x[0], generator=rng)
    with pytest.raises(UnsupportedModelError):
        FeatureCollision(base_class=0)(
            as_classifier(RandomForestClassifier(n_estimators=2).fit(x, y)), x, y, x[0],
            generator=rng)


def test_same_generator_same_poisons() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(40, 4)), np.repeat([0, 1], 20)
    model = as_classifier(LogisticRegression().fit(x, y))
    a, b = (FeatureCollision(base_class=0, n_poisons=3, steps=20)(
        model, x, y, x[30], generator=np.random.default_rng(5)) for _ in range(2))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.x, b.x)
