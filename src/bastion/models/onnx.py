"""``OnnxClassifier``: an ONNX model run by onnxruntime on the CPU, as a black box.

Which output holds the scores, and whether they are probabilities or logits, is read
from the graph when ``output="auto"``:

* the scores are the first float output of rank 2, or a ZipMap ``seq(map)`` output as
  scikit-learn converters (skl2onnx) write next to an integer ``label`` output;
* they are probabilities when the node that makes them (looking through shape-only
  nodes such as Identity, Reshape, Cast) is a ``Softmax`` or ``ZipMap``, or its name says
  ``prob``; a single ``Sigmoid`` unit is the probability of class 1; anything else is
  read as logits, and softmax gives the probabilities (a single unit ``z``: ``[0, z]``).

The input shape comes from the graph's input when every axis after the batch is fixed;
otherwise ``input_shape`` must be given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bastion.errors import ConfigError, ShapeMismatchError, UnsupportedModelError
from bastion.models._base import AdapterBase
from bastion.models._checks import check_batch, check_batch_size, check_bounds, check_input_shape
from bastion.models.sklearn import margin_softmax

__all__ = ["OnnxClassifier", "OutputKind"]

OutputKind = Literal["auto", "probabilities", "logits"]

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}
_PASS_THROUGH = frozenset({"Identity", "Reshape", "Flatten", "Cast", "Squeeze", "Unsqueeze"})


class OnnxClassifier(AdapterBase):
    """An ONNX classifier with one input, run batch by batch; each sample is one query."""

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        *,
        input_shape: Sequence[int] | None = None,
        n_classes: int | None = None,
        bounds: Sequence[float] = (0.0, 1.0),
        output: OutputKind = "auto",
        batch_size: int = 256,
    ) -> None:
        import onnxruntime as ort

        if output not in ("auto", "probabilities", "logits"):
            raise ConfigError(f"output {output!r} must be auto, probabilities or logits")
        source = model if isinstance(model, bytes) else str(Path(model))
        try:
            self._session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
        except _ort_errors() as e:
            raise UnsupportedModelError(
                f"onnxruntime cannot load this model ({_first_line(e)}); check it with "
                "'bastion artifact scan' or re-export it with standard operators"
            ) from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise UnsupportedModelError(
                f"the ONNX model has {len(inputs)} inputs; only single-input classifiers work"
            )
        self._input = inputs[0].name
        self._dtype = _DTYPES.get(inputs[0].type)
        if self._dtype is None:
            raise UnsupportedModelError(f"the ONNX input has type {inputs[0].type}; need numbers")
        self._input_shape = _input_shape(inputs[0].shape, input_shape)
        self._bounds = check_bounds(bounds)
        batch_axis = inputs[0].shape[0] if inputs[0].shape else None
        self._batch_size = 1 if batch_axis == 1 else check_batch_size(batch_size)
        self._output, self._zipmap = _score_output(self._session.get_outputs())
        zeros = np.zeros((1, *self._input_shape), self._dtype)
        try:
            (raw,) = self._session.run([self._output], {self._input: zeros})
        except _ort_errors() as e:
            raise ShapeMismatchError(
                f"the ONNX model fails on inputs of shape {self._input_shape} "
                f"({_first_line(e)}); check --input-shape"
            ) from None
        self._n_outputs = int(self._scores(raw, 1).shape[1])
        self._n_classes = max(self._n_outputs, 2)
        if n_classes is not None and n_classes != self._n_classes:
            raise ConfigError(
                f"n_classes={n_classes} but the ONNX model gives {self._n_outputs} score(s); "
                "leave n_classes out to use the model's"
            )
        if output == "auto":
            output = _auto_kind(model, self._output, zipmap=self._zipmap,
                                n_outputs=self._n_outputs)
        self._probabilities = output == "probabilities"

    @property
    def outputs_probabilities(self) -> bool:
        """Whether the chosen output is read as probabilities (else as logits)."""
        return self._probabilities

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        arr = check_batch(x, self._input_shape)
        self._n_queries += len(arr)
        out = np.empty((len(arr), self._n_classes), dtype=np.float64)
        for start in range(0, len(arr), self._batch_size):
            chunk = arr[start : start + self._batch_size].astype(self._dtype, copy=False)
            out[start : start + len(chunk)] = self._to_probabilities(self._run(chunk))
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            (raw,) = self._session.run([self._output], {self._input: x})
        except _ort_errors() as e:
            raise UnsupportedModelError(f"the ONNX model failed: {_first_line(e)}") from None
        return self._scores(raw, len(x))

    def _scores(self, raw: Any, n: int) -> np.ndarray:
        scores = _zipmap_rows(raw) if self._zipmap else np.asarray(raw, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[0] != n:
            raise UnsupportedModelError(
                f"the ONNX output {self._output!r} has shape {scores.shape} for {n} inputs;"
                " a classifier must give (n, n_classes)"
            )
        return scores

    def _to_probabilities(self, scores: np.ndarray) -> np.ndarray:
        if not self._probabilities:
            return margin_softmax(scores[:, 0] if self._n_outputs == 1 else scores)
        if self._n_outputs == 1:
            return np.concatenate([1 - scores, scores], axis=1)
        return scores


def _input_shape(graph_dims: Sequence[Any], given: Sequence[int] | None) -> tuple[int, ...]:
    """The per-sample shape: from the graph when fixed there, checked against ``given``."""
    dims = list(graph_dims)[1:]
    if given is None:
        if dims and all(isinstance(d, int) and d > 0 for d in dims):
            return tuple(dims)
        raise ConfigError(
            f"the ONNX model's input shape {list(graph_dims)} is not fixed; pass "
            "input_shape (on the command line --input-shape, e.g. 1,28,28)"
        )
    shape = check_input_shape(given, who="the ONNX model")
    if dims and (len(dims) != len(shape) or any(
        isinstance(d, int) and d > 0 and d != s for d, s in zip(dims, shape, strict=True)
    )):
        raise ShapeMismatchError(
            f"input_shape {shape} does not fit the ONNX model's input {list(graph_dims)}"
        )
    return shape


def _score_output(outputs: Sequence[Any]) -> tuple[str, bool]:
    """Name of the output that holds class scores, and whether it is a ZipMap."""
    for out in outputs:
        if out.type in ("tensor(float)", "tensor(double)", "tensor(float16)") and (
            len(out.shape) == 2
        ):
            return str(out.name), False
    for out in outputs:
        if str(out.type).startswith("seq(map("):
            return str(out.name), True
    names = ", ".join(f"{o.name}: {o.type} {o.shape}" for o in outputs)
    raise UnsupportedModelError(
        f"no ONNX output holds class scores of shape (n, n_classes) ({names})"
    )


def _auto_kind(
    model: str | os.PathLike[str] | bytes, output: str, *, zipmap: bool, n_outputs: int
) -> OutputKind:
    """Probabilities or logits, judged from the node that makes ``output`` and its name."""
    import onnx

    if zipmap:
        return "probabilities"
    proto = (onnx.load_model_from_string(model) if isinstance(model, bytes)
             else onnx.load_model(str(model), load_external_data=False))
    producer = _producer(proto.graph, output)
    if producer == "Sigmoid" and n_outputs > 1:
        raise UnsupportedModelError(
            f"the ONNX output {output!r} is {n_outputs} independent sigmoids (multi-label?);"
            " pass output='probabilities' or 'logits'"
        )
    if producer in ("Softmax", "Sigmoid") or "prob" in output.lower():
        return "probabilities"
    return "logits"


def _producer(graph: Any, output: str) -> str:
    """Op type of the node that makes ``output``, looking through shape-only nodes."""
    producers = {name: node for node in graph.node for name in node.output}
    node = producers.get(output)
    while node is not None and node.op_type in _PASS_THROUGH and node.input:
        node = producers.get(node.input[0])
    return "" if node is None else str(node.op_type)


def _ort_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's own exception types (they derive from Exception only)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError",
             "RuntimeException", "InvalidProtobuf", "ModelLoaded", "NotImplemented",
             "InvalidGraph", "EPFail")
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _zipmap_rows(rows: Sequence[dict[Any, float]]) -> np.ndarray:
    """ZipMap output (one ``{label: probability}`` dict per sample) as an array by label."""
    if not rows:
        return np.empty((0, 0))
    labels = sorted(rows[0])
    return np.array([[row[k] for k in labels] for row in rows], dtype=np.float64)
