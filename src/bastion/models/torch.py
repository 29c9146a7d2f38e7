"""``TorchClassifier``: a torch ``nn.Module`` as both a black-box and a white-box model.

Inputs live in the model's input space (for images usually ``[0, 1]``); per-channel
normalisation ``(x - mean) / std`` happens inside the adapter, so attacks measure their
budget in the space a user thinks in and gradients flow through the normalisation.

A module with a single output unit is read as a binary classifier whose output is the
logit of class 1; :meth:`TorchClassifier.logits` then returns ``[0, z]`` so that softmax
gives ``[1 - sigmoid(z), sigmoid(z)]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from bastion.errors import ConfigError, ShapeMismatchError, UnsupportedModelError
from bastion.models._base import AdapterBase
from bastion.models._checks import check_batch, check_batch_size, check_bounds, check_input_shape

__all__ = ["TorchClassifier"]


class TorchClassifier(AdapterBase):
    """A torch module adapted to ``Classifier`` and ``Differentiable``.

    The module is put in eval mode and moved to ``device`` (both in place: the adapter
    wraps the caller's module, it does not copy it); a ``torch.export`` module keeps the
    mode it was exported in. ``n_classes`` is read from one
    forward pass when not given. ``predict_proba`` counts every sample as a query;
    ``logits`` is white-box access and does not.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        input_shape: Sequence[int],
        n_classes: int | None = None,
        bounds: Sequence[float] = (0.0, 1.0),
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        estimator: Any = None,
    ) -> None:
        if not isinstance(module, torch.nn.Module):
            raise UnsupportedModelError(
                f"TorchClassifier wraps a torch.nn.Module, not {type(module).__name__}"
            )
        self._input_shape = check_input_shape(input_shape, who="a torch model")
        self._bounds = check_bounds(bounds)
        self._batch_size = check_batch_size(batch_size)
        self._device = torch.device(device)
        with contextlib.suppress(NotImplementedError):  # torch.export fixes the mode at export
            module.eval()
        self.module = module.to(self._device)
        self._dtype = _param_dtype(module)
        self._mean = self._channel_stat(mean, "mean", default=0.0)
        self._std = self._channel_stat(std, "std", default=1.0)
        if bool((self._std <= 0).any()):
            raise ConfigError("std must be positive for every channel")
        self._n_outputs = self._probe_outputs()
        self._n_classes = max(self._n_outputs, 2)
        if n_classes is not None and n_classes != self._n_classes:
            raise ConfigError(
                f"n_classes={n_classes} but the model has {self._n_outputs} output(s); "
                "leave n_classes out to use the model's"
            )
        # The scikit-learn estimator this module is an exact twin of, if any: attacks that
        # train reference models (membership inference) clone and refit it.
        self.estimator = estimator

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the module computes in; inputs are cast to it inside the adapter."""
        return self._dtype

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch on ``device``, keeping the graph; returned in ``x``'s dtype."""
        if tuple(x.shape[1:]) != self._input_shape or x.ndim != len(self._input_shape) + 1:
            raise ShapeMismatchError(
                f"the model takes tensors of shape (n, {', '.join(map(str, self._input_shape))})"
                f" but got {tuple(x.shape)}"
            )
        out = self._forward(x.to(self._dtype))
        return out.to(x.dtype) if x.is_floating_point() else out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Softmax probabilities (float64) for a numpy batch, computed in batches."""
        arr = check_batch(x, self._input_shape)
        self._n_queries += len(arr)
        out = np.empty((len(arr), self._n_classes), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(arr), self._batch_size):
                chunk = torch.as_tensor(
                    arr[start : start + self._batch_size], dtype=self._dtype, device=self._device
                )
                probs = torch.softmax(self._forward(chunk).double(), dim=1)
                out[start : start + len(chunk)] = probs.cpu().numpy()
        return out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.module((x - self._mean) / self._std)
        if z.ndim != 2 or z.shape[1] != self._n_outputs:
            raise UnsupportedModelError(
                f"the model returned shape {tuple(z.shape)}; a classifier must return "
                f"(n, {self._n_outputs}) logits"
            )
        return torch.cat([torch.zeros_like(z), z], dim=1) if self._n_outputs == 1 else z

    def _probe_outputs(self) -> int:
        """Number of output units, from one forward pass on an in-bounds input."""
        low = self._bounds[0]
        probe = torch.full((1, *self._input_shape), low, dtype=self._dtype, device=self._device)
        try:
            with torch.inference_mode():
                z = self.module((probe - self._mean) / self._std)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ShapeMismatchError(
                f"the model fails on inputs of shape {self._input_shape} ({first}); "
                "check --input-shape"
            ) from None
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] != 1:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise UnsupportedModelError(
                f"the model returned {shape} for one input; a classifier must return "
                "(n, n_classes) logits"
            )
        return int(z.shape[1])

    def _channel_stat(
        self, value: float | Sequence[float] | None, name: str, *, default: float
    ) -> torch.Tensor:
        """Mean or std shaped ``(C, 1, ..., 1)`` to broadcast over the first input axis."""
        raw = torch.as_tensor(default if value is None else value, dtype=self._dtype)
        if raw.ndim == 0:
            return raw.to(self._device)
        channels = self._input_shape[0]
        if raw.ndim != 1 or len(raw) != channels:
            raise ConfigError(
                f"{name} has {raw.numel()} values; give one number or one per channel "
                f"({channels} for input shape {self._input_shape})"
            )
        trailing = (1,) * (len(self._input_shape) - 1)
        return raw.reshape(channels, *trailing).to(self._device)


def _param_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of the module's first floating parameter or buffer (float32 when none)."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread for the duration, then restore the caller's setting.

    Training a small model takes many tiny steps, where the intra-op thread pool costs
    more than it saves: on 2 shared cores a surrogate trains 10x faster on one thread.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
