import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from bastion.attacks.poisoning import BadNets, PoisonResult
from bastion.data.demo import demo_digits
from bastion.detection.poisoning import AttributionClustering
from bastion.detection.poisoning.attribution_clustering import attributions
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models import as_classifier
from bastion.models.torch import TorchClassifier
from bastion.typing import Classifier


def _mlp(x: np.ndarray, y: np.ndarray) -> TorchClassifier:
    """The benchmark's digits MLP: 64 -> 64 ReLU -> 10, Adam, full batch, seeded."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return TorchClassifier(net.eval(), input_shape=(8, 8), n_classes=10)


def _poisoned(target: int, fraction: float) -> tuple[PoisonResult, TorchClassifier]:
    train, _ = demo_digits(0)
    assert train.y is not None
    res = BadNets(target=target, fraction=fraction, patch_size=2)(
        train.x, train.y, generator=np.random.default_rng(0))
    return res, _mlp(res.x, res.y)


@pytest.mark.parametrize(("target", "fraction"), [(2, 0.05), (7, 0.10)])
def test_finds_backdoor_rows_in_a_target_class_activation_clustering_misses(
        target: int, fraction: float) -> None:
    # At 10 % the poison is half of its class, so a smaller-cluster rule cannot see it.
    res, model = _poisoned(target, fraction)
    found = AttributionClustering()(model, res.x, res.y)
    assert found.flagged[res.mask].mean() >= 0.95
    assert found.flagged[~res.mask].mean() <= 0.01
    assert set(np.unique(res.y[found.flagged]).tolist()) == {target}
    # Flagged rows score above every unflagged row of the target class.
    unflagged = (res.y == target) & ~found.flagged
    assert found.scores[found.flagged].min() > found.scores[unflagged].max()


def test_flags_nothing_on_clean_digits() -> None:
    train, _ = demo_digits(0)
    assert train.y is not None
    found = AttributionClustering()(_mlp(train.x, train.y), train.x, train.y)
    assert not found.flagged.any()


def test_attributions_are_gradient_times_input_of_the_centred_label_logit() -> None:
    train, _ = demo_digits(0)
    assert train.y is not None
    fit = LogisticRegression(max_iter=300).fit(train.x.reshape(len(train.x), -1), train.y)
    x, y = train.x[:5], train.y[:5]
    got = attributions(as_classifier(fit, input_shape=(8, 8)), x, y)
    # A linear model's centred logit has gradient w_y - mean_k w_k; times the input.
    raw = (fit.coef_[y] - fit.coef_.mean(axis=0)) * x.reshape(5, -1)
    want = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_binary_models_give_both_classes_attributions() -> None:
    # A binary scikit-learn model's twin fixes class 0's logit; centring gives it a gradient.
    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    y = (x[:, 0] > 0.5).astype(int)
    model = as_classifier(LogisticRegression().fit(x, y))
    got = attributions(model, x, y)
    assert np.linalg.norm(got[y == 0], axis=1).min() > 0.99


class _BlackBox:
    n_classes, input_shape, bounds, n_queries = 2, (3,), (0.0, 1.0), 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.full((len(x), 2), 0.5)

    def reset_queries(self) -> None:
        return None


def test_refuses_a_model_without_gradients() -> None:
    model: Classifier = _BlackBox()
    with pytest.raises(UnsupportedModelError, match="attribution clustering needs gradients"):
        AttributionClustering()(model, np.zeros((20, 3)), np.arange(20) % 2)


@pytest.mark.parametrize("bad", [{"support_mass": 0.0}, {"max_support": 1.5},
                                 {"min_relabel": 0.0}, {"k": 0}])
def test_rejects_settings_outside_their_range(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        AttributionClustering(**bad)  # type: ignore[arg-type]
