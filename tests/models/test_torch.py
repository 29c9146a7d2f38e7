"""TorchClassifier: probabilities, logits with gradients, normalisation, counting, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bastion.errors import ConfigError, ShapeMismatchError, UnsupportedModelError
from bastion.models.torch import TorchClassifier
from bastion.typing import Classifier, Differentiable


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 5))


def test_is_both_protocols_and_infers_classes() -> None:
    model = TorchClassifier(_cnn(), input_shape=(3, 4, 4))
    assert isinstance(model, Classifier) and isinstance(model, Differentiable)
    assert model.n_classes == 5 and model.input_shape == (3, 4, 4)
    assert model.bounds == (0.0, 1.0) and model.device == torch.device("cpu")
    assert not model.module.training


def test_predict_proba_is_softmax_of_logits_across_batches() -> None:
    model = TorchClassifier(_cnn(), input_shape=(3, 4, 4), batch_size=3)
    x = np.random.default_rng(0).random((10, 3, 4, 4)).astype(np.float32)
    probs = model.predict_proba(x)
    expected = torch.softmax(model.logits(torch.from_numpy(x)).double(), 1).detach().numpy()
    assert probs.shape == (10, 5) and probs.dtype == np.float64
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


def test_counts_samples_not_calls() -> None:
    model = TorchClassifier(_cnn(), input_shape=(3, 4, 4), batch_size=2)
    model.predict_proba(np.zeros((5, 3, 4, 4), dtype=np.float32))
    model.predict_proba(np.zeros((2, 3, 4, 4)))
    model.logits(torch.zeros(4, 3, 4, 4))
    assert model.n_queries == 7
    model.reset_queries()
    assert model.n_queries == 0


def test_logits_keep_graph_through_normalisation() -> None:
    lin = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    model = TorchClassifier(lin, input_shape=(2,), mean=(0.5, 0.25), std=(2.0, 4.0))
    x = torch.tensor([[1.5, 2.25]], requires_grad=True)
    z = model.logits(x)
    np.testing.assert_allclose(z.detach().numpy(), [[0.5, 0.5, 1.0]])
    (grad,) = torch.autograd.grad(z[0, 2], x)
    np.testing.assert_allclose(grad.numpy(), [[0.5, 0.25]])


def test_per_channel_normalisation_broadcasts_over_first_axis() -> None:
    model = TorchClassifier(nn.Sequential(nn.Flatten(), nn.Identity()), input_shape=(2, 1, 2),
                            mean=[1.0, 2.0], std=[1.0, 0.5])
    x = torch.tensor([[[[1.0, 2.0]], [[2.0, 3.0]]]])
    np.testing.assert_allclose(model.logits(x).numpy(), [[0.0, 1.0, 0.0, 2.0]])


def test_single_output_is_binary_logit_of_class_one() -> None:
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(2.0)
        lin.bias.fill_(-1.0)
    model = TorchClassifier(lin, input_shape=(1,))
    probs = model.predict_proba(np.array([[1.0], [0.0]]))
    sig = 1 / (1 + np.exp(-np.array([1.0, -1.0])))
    assert model.n_classes == 2
    np.testing.assert_allclose(probs, np.stack([1 - sig, sig], axis=1), atol=1e-6)


def test_logits_follow_input_dtype() -> None:
    model = TorchClassifier(nn.Linear(3, 2).double(), input_shape=(3,))
    assert model.dtype == torch.float64
    assert model.logits(torch.zeros(2, 3)).dtype == torch.float32
    assert model.logits(torch.zeros(2, 3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((3, 4, 4), "add a batch axis"),
        ((2, 4, 4, 3), r"\(n, 3, 4, 4\)"),
        ((2, 3, 16), r"\(n, 3, 4, 4\)"),
        ((2, 48), r"\(n, 3, 4, 4\)"),
    ],
)
def test_shape_errors(shape: tuple[int, ...], match: str) -> None:
    model = TorchClassifier(_cnn(), input_shape=(3, 4, 4))
    with pytest.raises(ShapeMismatchError, match=match):
        model.predict_proba(np.zeros(shape, dtype=np.float32))
    assert model.n_queries == 0


def test_logits_shape_error() -> None:
    model = TorchClassifier(_cnn(), input_shape=(3, 4, 4))
    with pytest.raises(ShapeMismatchError, match="tensors of shape"):
        model.logits(torch.zeros(2, 3, 5, 5))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_shape": (3, 5, 5)}, ShapeMismatchError, "check --input-shape"),
        ({"input_shape": (3, 4, 4), "n_classes": 4}, ConfigError, "5 output"),
        ({"input_shape": (3, 4, 4), "bounds": (1.0, 0.0)}, ConfigError, "low < high"),
        ({"input_shape": (3, 4, 4), "mean": (0.1, 0.2)}, ConfigError, "one per channel"),
        ({"input_shape": (3, 4, 4), "std": 0.0}, ConfigError, "positive"),
        ({"input_shape": (3, 4, 4), "batch_size": 0}, ConfigError, "batch_size"),
        ({"input_shape": (0, 4)}, ConfigError, "positive integers"),
    ],
)
def test_construction_errors(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        TorchClassifier(_cnn(), **kwargs)  # type: ignore[arg-type]


def test_rejects_non_classifier_outputs() -> None:
    with pytest.raises(UnsupportedModelError, match="must return"):
        TorchClassifier(nn.Identity(), input_shape=(2, 3))
    with pytest.raises(UnsupportedModelError, match=r"torch\.nn\.Module"):
        TorchClassifier(object(), input_shape=(2,))  # type: ignore[arg-type]


def test_string_inputs_are_invalid() -> None:
    model = TorchClassifier(nn.Linear(2, 3), input_shape=(2,))
    with pytest.raises(ValueError, match="numbers"):
        model.predict_proba(np.array([["a", "b"]]))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 9), batch=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_rows_are_distributions_and_batching_is_invisible(n: int, batch: int, seed: int) -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    x = np.random.default_rng(seed).normal(size=(n, 3)) * 10
    a = TorchClassifier(module, input_shape=(3,), batch_size=batch).predict_proba(x)
    b = TorchClassifier(module, input_shape=(3,), batch_size=256).predict_proba(x)
    assert a.shape == (n, 3) and np.all(a >= 0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_parameters_keep_their_requires_grad() -> None:
    module = _cnn()
    frozen = next(module.parameters())
    frozen.requires_grad_(False)
    model = TorchClassifier(module, input_shape=(3, 4, 4))
    model.predict_proba(np.zeros((1, 3, 4, 4)))
    model.logits(torch.zeros(1, 3, 4, 4, requires_grad=True)).sum().item()
    assert [p.requires_grad for p in module.parameters()] == [False, True, True, True]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_normalisation_on_device() -> None:
    model = TorchClassifier(_cnn(), input_shape=(3, 4, 4), mean=(0.1, 0.2, 0.3),
                            std=(0.5, 0.5, 0.5), device="cuda")
    x = np.random.default_rng(0).random((3, 3, 4, 4)).astype(np.float32)
    cpu = TorchClassifier(_cnn(), input_shape=(3, 4, 4), mean=(0.1, 0.2, 0.3),
                          std=(0.5, 0.5, 0.5))
    assert model.logits(torch.from_numpy(x).cuda()).device.type == "cuda"
    np.testing.assert_allclose(model.predict_proba(x), cpu.predict_proba(x), atol=1e-5)
