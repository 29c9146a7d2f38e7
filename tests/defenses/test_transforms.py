"""Input transforms: shapes, bounds, oracles, determinism, and what a naive attack sees."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from bastion.attacks import ATTACKS
from bastion.defenses import HARDENERS, build_hardener
from bastion.defenses.adaptive import BPDA
from bastion.defenses.transforms import (
    JPEG,
    BitDepth,
    FeatureSqueeze,
    MedianSmooth,
    RandomResizePad,
    TransformedClassifier,
    TransformedDifferentiable,
    TVDenoise,
    transformed,
)
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models import TorchClassifier
from bastion.typing import Differentiable

from ..attacks.conftest import BlackBox, TorchNet

ALL = [JPEG(quality=60), BitDepth(bits=3), TVDenoise(weight=0.2), MedianSmooth(size=3),
       RandomResizePad(min_scale=0.6), FeatureSqueeze(size=2, bits=2)]
GEN = torch.Generator().manual_seed(0)


@pytest.fixture(scope="module")
def cnn(plain_cnn: TorchClassifier, digits) -> tuple[TorchClassifier, torch.Tensor,
                                                     torch.Tensor]:
    test = digits[1]
    return plain_cnn, torch.as_tensor(test.x[:120]), torch.as_tensor(test.y[:120])


def _linear(shape: tuple[int, ...], bounds: tuple[float, float] = (0.0, 1.0)) -> TorchNet:
    torch.manual_seed(0)
    return TorchNet(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(
        int(np.prod(shape)), 4)), shape, 4, bounds)


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 9, 7)])
def test_transform_keeps_shape_and_bounds(transform, shape) -> None:
    model = transformed(_linear(shape, bounds=(-1.0, 2.0)), transform)
    x = torch.rand((5, *shape), generator=GEN) * 3 - 1
    out = model.preprocess(x)
    assert out.shape == x.shape
    assert float(out.min()) >= -1.0 - 1e-6 and float(out.max()) <= 2.0 + 1e-6
    assert model.predict_proba(x.numpy()).shape == (5, 4)


def test_bit_depth_rounds_to_the_nearest_level() -> None:
    x = torch.tensor([0.0, 0.1, 0.24, 0.26, 0.6, 0.99, 1.0])
    out = BitDepth(bits=2)(x, GEN)
    torch.testing.assert_close(out, torch.tensor([0, 0, 1 / 3, 1 / 3, 2 / 3, 1, 1]))


@pytest.mark.parametrize("size", [2, 3, 4])
def test_median_smooth_matches_scipy(size: int) -> None:
    x = torch.rand((2, 3, 9, 7), generator=GEN)
    expected = scipy.ndimage.median_filter(x.numpy(), size=(1, 1, size, size), mode="nearest")
    torch.testing.assert_close(MedianSmooth(size=size)(x, GEN), torch.as_tensor(expected))


def test_jpeg_keeps_a_smooth_image_and_removes_high_frequency_noise() -> None:
    ramp = torch.linspace(0.2, 0.8, 16).repeat(16, 1)[None, None]
    noise = torch.rand((1, 1, 16, 16), generator=GEN) * 0.2 - 0.1
    jpeg = JPEG(quality=50)
    assert float((jpeg(ramp, GEN) - ramp).abs().max()) < 0.05
    assert float((jpeg(ramp + noise, GEN) - ramp).norm()) < float(noise.norm())


def test_tv_denoise_lowers_total_variation_and_keeps_the_mean() -> None:
    x = torch.rand((2, 1, 12, 12), generator=GEN)
    out = TVDenoise(weight=0.3)(x, GEN)

    def tv(a: torch.Tensor) -> float:
        return float(a.diff(dim=-1).abs().sum() + a.diff(dim=-2).abs().sum())

    assert tv(out) < 0.5 * tv(x)
    torch.testing.assert_close(out.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-3, rtol=0)


def test_feature_squeeze_is_median_then_bit_depth() -> None:
    x = torch.rand((3, 1, 8, 8), generator=GEN)
    expected = BitDepth(bits=2)(MedianSmooth(size=2)(x, GEN), GEN)
    torch.testing.assert_close(FeatureSqueeze(size=2, bits=2)(x, GEN), expected)


def test_random_resize_pad_is_seeded_and_random_across_calls() -> None:
    net = _linear((1, 8, 8))
    x = torch.rand((6, 1, 8, 8), generator=GEN) + 0.5
    a, b = (transformed(net, RandomResizePad(min_scale=0.5), seed=3) for _ in range(2))
    first = a.preprocess(x)
    torch.testing.assert_close(first, b.preprocess(x))
    assert not torch.equal(first, a.preprocess(x))  # a fresh draw on the next call
    assert not torch.equal(first, transformed(net, RandomResizePad(min_scale=0.5),
                                              seed=4).preprocess(x))
    # each image becomes one s x s block of content (4 <= s <= 8) inside zero padding
    for image in first[:, 0]:
        rows, cols = (image > 0).any(1).nonzero(), (image > 0).any(0).nonzero()
        side = len(rows)
        assert 4 <= side <= 8 and len(cols) == side
        assert int((image > 0).sum()) == side * side
        assert int(rows[-1] - rows[0]) == side - 1  # contiguous


def test_wrapper_keeps_capabilities_and_counts_queries_on_the_model() -> None:
    net = _linear((1, 8, 8))
    white, black = transformed(net, BitDepth()), transformed(BlackBox(net), BitDepth())
    assert isinstance(white, TransformedDifferentiable) and isinstance(white, Differentiable)
    assert isinstance(black, TransformedClassifier) and not isinstance(black, Differentiable)
    net.reset_queries()
    black.predict_proba(np.zeros((7, 1, 8, 8), dtype=np.float32))
    assert black.n_queries == 7


@pytest.mark.parametrize(("transform", "masked"), [
    (BitDepth(bits=3), True), (JPEG(), True), (TVDenoise(), True), (FeatureSqueeze(), True),
    (MedianSmooth(size=2), False), (RandomResizePad(), False),
])
def test_gradient_is_what_a_naive_attacker_gets(transform, masked: bool) -> None:
    model = transformed(_linear((1, 8, 8)), transform)
    assert isinstance(model, TransformedDifferentiable)
    x = torch.rand((4, 1, 8, 8), generator=GEN).requires_grad_(True)
    (grad,) = torch.autograd.grad(model.logits(x)[:, 0].sum(), x)
    assert bool((grad == 0).all()) is masked


@pytest.mark.parametrize(("transform", "shape", "error"), [
    (JPEG(), (2, 8, 8), UnsupportedModelError),
    (MedianSmooth(), (30,), UnsupportedModelError),
    (JPEG(quality=0), (1, 8, 8), ConfigError),
    (BitDepth(bits=0), (30,), ConfigError),
    (RandomResizePad(min_scale=1.0), (1, 8, 8), ConfigError),
    (TVDenoise(weight=0.0), (1, 8, 8), ConfigError),
])
def test_transform_refuses_what_it_cannot_do(transform, shape, error) -> None:
    with pytest.raises(error):
        transformed(_linear(shape), transform)


@pytest.mark.parametrize("transform", [
    JPEG(quality=75), BitDepth(bits=4), pytest.param(TVDenoise(), marks=pytest.mark.slow),
], ids=lambda t: type(t).__name__)
def test_masking_transform_stops_plain_pgd_without_costing_accuracy(cnn, transform) -> None:
    model, x, y = cnn
    defended = transformed(model, transform)
    pgd = ATTACKS.get("pgd")(eps=0.15, steps=10)
    undefended_rate = pgd(model, x, y).success_rate
    defended_rate = pgd(defended, x, y).success_rate
    clean = float((defended.predict_proba(x.numpy()).argmax(1) == y.numpy()).mean())
    base = float((model.predict_proba(x.numpy()).argmax(1) == y.numpy()).mean())
    assert clean >= base - 0.05
    assert defended_rate < 0.5 * undefended_rate


def test_transform_is_a_hardening_method_that_wraps_the_model_unchanged() -> None:
    net = _linear((1, 8, 8))
    before = [p.detach().clone() for p in net.net.parameters()]
    hardener = build_hardener("transform-jpeg", {"quality": "40"})
    assert hardener == JPEG(quality=40) and HARDENERS.get("transform-jpeg") is JPEG
    result = hardener.apply(net, None, seed=5)  # type: ignore[arg-type]  # data is unused
    assert isinstance(result.model, TransformedDifferentiable) and result.model.model is net
    assert result.masks_gradients and result.method == "transform-jpeg"
    assert dict(result.wrapper) == {"transform": "transform-jpeg", "seed": 5, "quality": 40}
    ((label, view),) = result.adaptive
    assert label == "bpda" and isinstance(view, BPDA)
    for old, new in zip(before, net.net.parameters(), strict=True):
        assert torch.equal(old, new)


@pytest.mark.parametrize(("name", "masks"), [
    ("transform-jpeg", True), ("transform-bit-depth", True), ("transform-tv", True),
    ("transform-resize-pad", True), ("transform-squeeze", True), ("transform-median", False),
])
def test_every_transform_is_registered_with_its_masking_flag(name: str, masks: bool) -> None:
    assert HARDENERS.get(name).masks_gradients is masks
