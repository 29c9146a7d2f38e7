"""Input transforms as model wrappers: the model sees a transformed copy of every input.

Each transform maps a batch in ``[0, 1]`` to a batch of the same shape in ``[0, 1]``;
:class:`TransformedClassifier` rescales from the model's ``bounds`` and back, so the
wrapped model is a ``Classifier`` (and ``Differentiable`` when the model is) that every
bastion attack and check runs on.

The wrapper's gradient is what a naive attacker gets by differentiating the pipeline:
through torch transforms (median smoothing, random resize-and-pad) it is the true
gradient; through a transform autograd cannot see into (JPEG in Pillow, TV denoising in
scikit-image) or one that is flat almost everywhere (bit-depth reduction) it is zero.
That zero gradient is gradient masking, not robustness: :mod:`bastion.defenses.adaptive`
is the explicit adaptive path (BPDA, EOT) that a fair evaluation must also run.

* :class:`JPEG` — lossy JPEG round trip (Dziugaite et al. 2016; Guo et al. 2018).
* :class:`BitDepth` — colour-depth reduction (Xu, Evans & Qi, NDSS 2018).
* :class:`TVDenoise` — total-variation (ROF) denoising, Chambolle's algorithm.
* :class:`MedianSmooth` — local median filter (Xu et al. 2018).
* :class:`RandomResizePad` — random resizing and padding (Xie et al., ICLR 2018).
* :class:`FeatureSqueeze` — Xu et al.'s squeezers in sequence: median smoothing, then
  bit-depth reduction.
"""

from __future__ import annotations

import dataclasses
import io
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from bastion.defenses._base import HARDENERS, HardenResult, hardener_name
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models._base import Wrapper
from bastion.typing import Classifier, Differentiable

if TYPE_CHECKING:
    from bastion.data import Dataset
    from bastion.progress import ProgressSink

__all__ = [
    "JPEG",
    "BitDepth",
    "FeatureSqueeze",
    "InputTransform",
    "MedianSmooth",
    "RandomResizePad",
    "TVDenoise",
    "TransformedClassifier",
    "TransformedDifferentiable",
    "transformed",
]


@dataclass(frozen=True, kw_only=True)
class InputTransform(ABC):
    """A map from a batch in ``[0, 1]`` to a batch of the same shape in ``[0, 1]``.

    ``differentiable``: autograd through ``__call__`` gives the transform's gradient.
    ``randomized``: the output depends on draws from ``generator``. A transform is also a
    hardening method: :meth:`apply` wraps the user's model, unchanged, behind it.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier,)
    differentiable: ClassVar[bool] = False
    randomized: ClassVar[bool] = False
    # Plain gradient attacks are misled unless the gradient is exact and deterministic.
    masks_gradients: ClassVar[bool] = True

    @abstractmethod
    def check(self, input_shape: tuple[int, ...]) -> None:
        """Raise a ``BastionError`` when inputs of this shape cannot be transformed."""

    @abstractmethod
    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...

    def approximation(self, x: torch.Tensor) -> torch.Tensor:
        """A differentiable stand-in for BPDA's backward pass; identity unless overridden."""
        return x

    def apply(
        self, model: Classifier, train: Dataset, *, val: Dataset | None = None, seed: int = 0,
        progress: ProgressSink | None = None,
    ) -> HardenResult:
        """The user's model behind this transform, with the adaptive views to evaluate."""
        from bastion.defenses.adaptive import adaptive_views

        wrapped = transformed(model, self, seed=seed)
        name = hardener_name(type(self))
        views = adaptive_views(wrapped) if self.masks_gradients else ()
        notes = () if views or not self.masks_gradients else (
            f"{name} masks gradients and the model has none to attack adaptively; only "
            "query-based attacks evaluate it",)
        return HardenResult(
            model=wrapped, method=name, masks_gradients=self.masks_gradients,
            wrapper={"transform": name, "seed": seed, **dataclasses.asdict(self)},
            adaptive=views, notes=notes,
        )


def _check_image(name: str, input_shape: tuple[int, ...], channels: tuple[int, ...] = ()) -> None:
    if len(input_shape) != 3 or (channels and input_shape[0] not in channels):
        want = f"{' or '.join(map(str, channels))} channels" if channels else "any channels"
        raise UnsupportedModelError(
            f"the {name} transform needs images of shape (C, H, W) with {want}; this model "
            f"takes {input_shape}: pick a transform for its inputs (e.g. bit-depth)"
        )


@HARDENERS.register("transform-jpeg")
@dataclass(frozen=True, kw_only=True)
class JPEG(InputTransform):
    """JPEG encode and decode at ``quality`` (1-95) with Pillow, one image at a time."""

    quality: int = 75

    def check(self, input_shape: tuple[int, ...]) -> None:
        if not 1 <= self.quality <= 95:
            raise ConfigError(f"jpeg quality must lie in [1, 95]; got {self.quality}")
        _check_image("jpeg", input_shape, channels=(1, 3))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from PIL import Image

        pixels = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        out = np.empty(tuple(x.shape), dtype=np.uint8)
        for i, image in enumerate(pixels.permute(0, 2, 3, 1).numpy()):
            mode = "L" if image.shape[2] == 1 else "RGB"
            buffer = io.BytesIO()
            Image.fromarray(image.squeeze(2) if mode == "L" else image, mode).save(
                buffer, format="JPEG", quality=self.quality)
            decoded = np.asarray(Image.open(buffer).convert(mode))
            out[i] = decoded[None] if mode == "L" else decoded.transpose(2, 0, 1)
        return torch.as_tensor(out, device=x.device).to(x.dtype) / 255


@HARDENERS.register("transform-bit-depth")
@dataclass(frozen=True, kw_only=True)
class BitDepth(InputTransform):
    """Round every value to one of ``2**bits`` evenly spaced levels."""

    # differentiable stays False: the map is piecewise constant, its gradient zero
    bits: int = 4

    def check(self, input_shape: tuple[int, ...]) -> None:
        if not 1 <= self.bits <= 16:
            raise ConfigError(f"bit-depth bits must lie in [1, 16]; got {self.bits}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        levels = 2**self.bits - 1
        out: torch.Tensor = torch.round(x.clamp(0, 1) * levels) / levels
        return out


@HARDENERS.register("transform-tv")
@dataclass(frozen=True, kw_only=True)
class TVDenoise(InputTransform):
    """Total-variation denoising (Rudin-Osher-Fatemi) with scikit-image's Chambolle solver.

    ``weight`` trades fidelity for smoothness: larger removes more (and more signal).
    """

    weight: float = 0.1
    max_iterations: int = 200

    def check(self, input_shape: tuple[int, ...]) -> None:
        if not (self.weight > 0 and math.isfinite(self.weight)) or self.max_iterations < 1:
            raise ConfigError("tv denoising needs weight > 0 and max_iterations >= 1")
        _check_image("tv", input_shape)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from skimage.restoration import denoise_tv_chambolle

        images = x.detach().cpu().double().numpy()
        out = np.stack([
            denoise_tv_chambolle(  # type: ignore[no-untyped-call]  # scikit-image is untyped
                image, weight=self.weight, max_num_iter=self.max_iterations,
                                 channel_axis=0)
            for image in images
        ])
        return torch.as_tensor(out, device=x.device).to(x.dtype).clamp(0, 1)


@HARDENERS.register("transform-median")
@dataclass(frozen=True, kw_only=True)
class MedianSmooth(InputTransform):
    """Median of each ``size`` x ``size`` window, per channel, edges replicated.

    Windows match ``scipy.ndimage.median_filter(mode="nearest")``: for an even size the
    window reaches one pixel further back, and the median is the upper middle value.
    Autograd routes each output's gradient to the pixel that was the median.
    """

    differentiable: ClassVar[bool] = True
    masks_gradients: ClassVar[bool] = False
    size: int = 2

    def check(self, input_shape: tuple[int, ...]) -> None:
        if self.size < 2:
            raise ConfigError(f"median smoothing needs size >= 2; got {self.size}")
        _check_image("median", input_shape)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        k = self.size
        before, after = k // 2, (k - 1) // 2
        padded = F.pad(x, (before, after, before, after), mode="replicate")
        windows = padded.unfold(2, k, 1).unfold(3, k, 1).flatten(-2)
        ranked, _ = windows.sort(dim=-1)
        return ranked[..., (k * k) // 2]


@HARDENERS.register("transform-resize-pad")
@dataclass(frozen=True, kw_only=True)
class RandomResizePad(InputTransform):
    """Random resizing, then zero padding at a random offset (Xie et al., ICLR 2018).

    Each image is resized (nearest neighbour, as in the paper) to a random ``h' x w'``
    with ``h' = round(u * H)``, ``u`` uniform in ``[min_scale, 1]``, then padded with zeros
    (the lower bound) at a random offset back to ``H x W``. Xie et al. enlarge 299 to at
    most 331 and feed the larger image; here the output keeps the model's own input size
    so that any fixed-size network can be wrapped unchanged.
    """

    differentiable: ClassVar[bool] = True
    randomized: ClassVar[bool] = True
    min_scale: float = 0.8

    def check(self, input_shape: tuple[int, ...]) -> None:
        if not 0 < self.min_scale < 1:
            raise ConfigError(f"resize-pad min_scale must lie in (0, 1); got {self.min_scale}")
        _check_image("resize-pad", input_shape)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        u = self.min_scale + (1 - self.min_scale) * torch.rand(
            len(x), generator=generator, device=generator.device)
        out = []
        for image, scale in zip(x, u.tolist(), strict=True):
            nh, nw = max(1, round(scale * h)), max(1, round(scale * w))
            top = int(torch.randint(h - nh + 1, (1,), generator=generator, device=generator.device))
            left = int(torch.randint(w - nw + 1, (1,), generator=generator,
                                     device=generator.device))
            small = F.interpolate(image[None], size=(nh, nw), mode="nearest")
            out.append(F.pad(small, (left, w - nw - left, top, h - nh - top)))
        return torch.cat(out)


@HARDENERS.register("transform-squeeze")
@dataclass(frozen=True, kw_only=True)
class FeatureSqueeze(InputTransform):
    """Xu et al.'s two image squeezers in sequence: median smoothing, then bit depth."""

    # not differentiable: the bit-depth step is flat almost everywhere
    size: int = 2
    bits: int = 4

    def check(self, input_shape: tuple[int, ...]) -> None:
        MedianSmooth(size=self.size).check(input_shape)
        BitDepth(bits=self.bits).check(input_shape)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        smoothed = MedianSmooth(size=self.size)(x, generator)
        return BitDepth(bits=self.bits)(smoothed, generator)

    def approximation(self, x: torch.Tensor) -> torch.Tensor:
        """The median step is differentiable; only the rounding needs BPDA's identity."""
        return MedianSmooth(size=self.size)(x, torch.Generator())


class TransformedClassifier(Wrapper):
    """``model`` behind ``transform``: every prediction is made on the transformed input.

    Randomised transforms draw from the wrapper's own generator, seeded once, so a
    fresh wrapper with the same seed gives the same sequence of predictions. Queries are
    counted by the wrapped model.
    """

    def __init__(self, model: Classifier, transform: InputTransform, *, seed: int = 0) -> None:
        transform.check(tuple(model.input_shape))
        self.model = self.wrapped = model
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The transformed batch, in the model's bounds; keeps autograd where it can."""
        lo, hi = self.bounds
        unit = ((x - lo) / (hi - lo)).clamp(0, 1)
        return lo + self.transform(unit, self.generator) * (hi - lo)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            moved = self.preprocess(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        return self.model.predict_proba(moved.numpy())


class TransformedDifferentiable(TransformedClassifier):
    """Also ``Differentiable``, with the gradient a naive attacker would compute.

    Through a transform autograd cannot follow, the gradient is zero (the input stays in
    the graph so that attacks run, and see exactly the masking the defence causes).
    """

    def __init__(self, model: Classifier, transform: InputTransform, *, seed: int = 0) -> None:
        super().__init__(model, transform, seed=seed)
        assert isinstance(model, Differentiable)  # transformed() only builds this for such
        self._white = model

    @property
    def device(self) -> torch.device:
        return self._white.device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform.differentiable:
            return self._white.logits(self.preprocess(x))
        with torch.no_grad():
            moved = self.preprocess(x.detach())
        return self._white.logits(moved + 0 * x)


def transformed(model: Classifier, transform: InputTransform, *, seed: int = 0
                ) -> TransformedClassifier:
    """Wrap ``model`` behind ``transform``; white-box when the model is, black-box otherwise."""
    if isinstance(model, Differentiable):
        return TransformedDifferentiable(model, transform, seed=seed)
    return TransformedClassifier(model, transform, seed=seed)
