"""Open a model file or URL as a ``Classifier``, choosing the loader by the file's content.

What loads, and how (nothing here unpickles an unscanned file):

============================  ===============================================================
ONNX                          onnxruntime; input shape read from the graph when fixed there
TorchScript                   cleared by the artifact scanner, then ``torch.jit.load``
``torch.export`` (``.pt2``)   cleared by the artifact scanner (its loader uses pickle), then
                              ``torch.export.load(...).module()``; input shape from the graph
safetensors                   weights only, into the architecture that ``factory`` builds
torch state dict              ``torch.load(weights_only=True)`` (the restricted unpickler), then
                              as safetensors; a whole pickled model is refused
scikit-learn (skops)          ``skops.io.load`` trusting only allowlisted types
``http(s)://`` URL            :class:`~bastion.models.http.HttpClassifier`
============================  ===============================================================

Pickle and joblib files are refused with ``UnsafeArtifactError``: they can run code when
loaded. ``factory`` is ``"package.module:callable"``; calling it with no arguments must
return the ``nn.Module`` whose ``state_dict`` the weights fill, strictly.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.errors import (
    ConfigError,
    InputNotFoundError,
    UnreadableInputError,
    UnsafeArtifactError,
    UnsupportedFormatError,
    UnsupportedModelError,
)
from bastion.formats import Format, detect_format
from bastion.typing import Classifier

if TYPE_CHECKING:
    import torch

__all__ = ["LOADABLE", "SKOPS_TRUSTED_PACKAGES", "load_model"]

LOADABLE = (
    "ONNX, TorchScript, torch.export (.pt2), safetensors or a torch state dict with "
    "--factory, scikit-learn saved with skops, or an http(s):// URL"
)

# Packages whose *classes* a skops file may name. Functions are never trusted: a
# FunctionTransformer holding one would call it on every prediction.
SKOPS_TRUSTED_PACKAGES: dict[str, str] = {
    "sklearn": "fitted estimators, trees, losses and optimisers are rebuilt from their "
    "state by skops; no method of theirs runs while the file is loaded",
    "numpy": "dtypes, scalars and random generators hold data only",
    "scipy.sparse": "sparse matrices in fitted state hold arrays only",
}

_HINTS = {
    Format.KERAS_H5: "Keras models are not loaded; convert it to ONNX (tf2onnx)",
    Format.KERAS_V3: "Keras models are not loaded; convert it to ONNX (tf2onnx)",
    Format.TF_SAVEDMODEL: "TensorFlow SavedModels are not loaded; convert it to ONNX (tf2onnx)",
    Format.GGUF: "GGUF holds language-model weights, not a classifier",
    Format.EMPTY: "the file is empty",
}
_STATE_DICT_KEYS = ("state_dict", "model_state_dict")


def load_model(
    source: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] | None = None,
    n_classes: int | None = None,
    bounds: Sequence[float] = (0.0, 1.0),
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    factory: str | None = None,
    device: str = "cpu",
    token: str | None = None,
    trust: bool = False,
) -> Classifier:
    """The model at ``source`` (a path or an ``http(s)://`` URL) as a ``Classifier``.

    ``input_shape`` is the shape of one sample; it may be left out for ONNX and
    ``torch.export`` files (they record it) and scikit-learn models. ``trust`` is the
    user's explicit override of the artifact scanner for TorchScript and ``.pt2`` files;
    it never makes bastion unpickle a pickle or joblib file: those are loaded only when
    the scanner clears them.
    """
    text = os.fspath(source)
    if text.startswith(("http://", "https://")):
        return _http(text, input_shape=input_shape, n_classes=n_classes, bounds=bounds,
                     token=token)
    path = Path(text)
    if not path.exists():
        raise InputNotFoundError(f"model {path} does not exist; check the path")
    fmt = detect_format(path)
    torch_kw: dict[str, Any] = {"input_shape": input_shape, "n_classes": n_classes,
                                "bounds": bounds, "mean": mean, "std": std, "device": device}
    match fmt:
        case Format.ONNX:
            from bastion.models.onnx import OnnxClassifier

            return OnnxClassifier(path, input_shape=input_shape, n_classes=n_classes,
                                  bounds=bounds)
        case Format.TORCHSCRIPT:
            _clear(path, trust)
            import torch

            jit_load: Callable[..., Any] = torch.jit.load  # untyped in torch's stubs
            with warnings.catch_warnings():  # the user handed us TorchScript; no nagging
                warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated")
                module = _read(path, lambda: jit_load(str(path), map_location=device))
            return _torch(module, **torch_kw)
        case Format.TORCH_EXPORT:
            _clear(path, trust)
            return _exported(path, **torch_kw)
        case Format.SAFETENSORS:
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            weights = _read(path, lambda: load_file(str(path), device=device), SafetensorError)
            return _torch(_build(factory, weights, path), **torch_kw)
        case Format.TORCH_ZIP | Format.TORCH_LEGACY:
            return _torch(_build(factory, _state_dict(path, device), path), **torch_kw)
        case Format.SKOPS:
            from bastion.models.adapt import as_classifier

            return as_classifier(_skops(path), input_shape=input_shape, bounds=bounds,
                                 device=device)
        case Format.PICKLE | Format.JOBLIB:
            from bastion.models.adapt import as_classifier

            return as_classifier(_unpickle_cleared(path, fmt), input_shape=input_shape,
                                 n_classes=n_classes, bounds=bounds, device=device)
        case Format.DIRECTORY:
            raise UnreadableInputError(f"{path} is a folder; give a model file ({LOADABLE})")
    hint = _HINTS.get(fmt, f"its content is {fmt}")
    raise UnsupportedFormatError(f"cannot load {path}: {hint}; bastion loads {LOADABLE}")


def _http(
    url: str, *, input_shape: Sequence[int] | None, n_classes: int | None,
    bounds: Sequence[float], token: str | None,
) -> Classifier:
    from bastion.models.http import HttpClassifier

    if n_classes is None or input_shape is None:
        raise ConfigError(
            "a model behind a URL needs its number of classes and input shape; "
            "pass --n-classes and --input-shape"
        )
    return HttpClassifier(url, n_classes=n_classes, input_shape=input_shape, bounds=bounds,
                          token=token)


def _clear(path: Path, trust: bool) -> None:
    """The artifact scanner's verdict on a file whose loader unpickles parts of it."""
    from bastion.supplychain.scanner import clear_for_loading

    clear_for_loading(path, trust=trust)


def _unpickle_cleared(path: Path, fmt: Format) -> Any:
    """Unpickle a pickle or joblib file only when the artifact scanner cleared it.

    The file is first copied into a private temporary folder, and that copy is both
    scanned and loaded, so the file cannot be swapped between the verdict and the load.
    ``--trust`` does not apply here: only a cleared file ever reaches an unpickler.
    """
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bastion-load-") as tmp:
        copy = Path(tmp) / path.name
        _read(path, lambda: shutil.copyfile(path, copy))
        try:
            _clear(copy, trust=False)
        except UnsafeArtifactError as err:
            raise UnsafeArtifactError(
                str(err).replace(str(copy), str(path)).replace(
                    ", or pass --trust for this file if you know where it came from",
                    "; re-save the model as skops, ONNX or safetensors",
                )
            ) from None
        if fmt is Format.JOBLIB:
            import joblib

            return _read(path, lambda: joblib.load(copy))
        import pickle

        with copy.open("rb") as handle:
            return _read(path, lambda: pickle.load(handle))


def _torch(module: torch.nn.Module, **kw: Any) -> Classifier:
    from bastion.models._checks import check_input_shape
    from bastion.models.torch import TorchClassifier

    shape = check_input_shape(kw.pop("input_shape"), who="a torch model")
    return TorchClassifier(module, input_shape=shape, **kw)


def _exported(path: Path, *, input_shape: Sequence[int] | None, **kw: Any) -> Classifier:
    """A ``torch.export`` program: the sample shape comes from its recorded input."""
    import torch

    program = _read(path, lambda: torch.export.load(str(path)))
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user_inputs = program.graph_signature.user_inputs
    if len(user_inputs) != 1:
        raise UnsupportedModelError(
            f"{path} takes {len(user_inputs)} inputs; only single-input classifiers work"
        )
    recorded = tuple(placeholders[str(user_inputs[0])].meta["val"].shape)
    if isinstance(recorded[0], int):
        raise UnsupportedModelError(
            f"{path} was exported for batches of exactly {recorded[0]}; re-export it with "
            "dynamic_shapes={'x': {0: torch.export.Dim('batch')}}"
        )
    sample = recorded[1:]
    if input_shape is None and all(isinstance(d, int) for d in sample):
        input_shape = tuple(int(d) for d in sample)
    return _torch(program.module(), input_shape=input_shape, **kw)


def _state_dict(path: Path, device: str) -> dict[str, torch.Tensor]:
    """Tensors from a ``torch.save`` file through torch's restricted (weights-only) unpickler."""
    import pickle

    import torch

    try:
        loaded = torch.load(str(path), map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafeArtifactError(
            f"{path} holds a whole pickled model (torch.save(model)), which can run code when "
            f"loaded; check it with 'bastion artifact scan {path}', then save "
            "model.state_dict() and pass --factory, or export to ONNX or torch.export"
        ) from None
    except (RuntimeError, OSError, EOFError) as e:
        raise UnreadableInputError(f"cannot read {path} as a torch file ({_line(e)})") from None
    if isinstance(loaded, Mapping):
        nested = [loaded[k] for k in _STATE_DICT_KEYS if isinstance(loaded.get(k), Mapping)]
        tensors = nested[0] if nested else loaded
        if tensors and all(isinstance(v, torch.Tensor) for v in tensors.values()):
            return dict(tensors)
    raise UnsupportedModelError(
        f"{path} holds a {type(loaded).__name__}, not a state dict of tensors; save "
        "model.state_dict() (or a checkpoint with a 'state_dict' entry)"
    )


def _build(factory: str | None, weights: Mapping[str, torch.Tensor], path: Path) -> Any:
    """The module ``factory`` builds, with ``weights`` loaded strictly into it."""
    import torch

    if not factory:
        raise ConfigError(
            f"{path} holds weights only; pass --factory package.module:function that builds "
            "the architecture"
        )
    module = _import_factory(factory)()
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"factory {factory} returned a {type(module).__name__}, not an nn.Module")
    expected = module.state_dict()
    problems = _key_problems(expected, weights)
    if problems:
        raise ConfigError(f"the weights in {path} do not fit {factory}: {problems}")
    module.load_state_dict(weights, strict=True)
    return module


def _import_factory(factory: str) -> Any:
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"factory {factory!r} must look like package.module:function")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot import factory {factory} ({_line(e)})") from None
    if not callable(target):
        raise ConfigError(f"factory {factory} is not callable")
    return target


def _key_problems(expected: Mapping[str, Any], weights: Mapping[str, Any]) -> str:
    """Missing keys, unexpected keys and shape mismatches, in one line."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [
        f"{k} is {tuple(weights[k].shape)} in the file but {tuple(expected[k].shape)} in the model"
        for k in sorted(set(expected) & set(weights))
        if tuple(weights[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing {_few(missing)}")
    if unexpected:
        parts.append(f"unexpected {_few(unexpected)}")
    if shapes:
        parts.append(_few(shapes))
    return "; ".join(parts)


def _skops(path: Path) -> Any:
    """A scikit-learn object from a skops file, trusting only allowlisted classes."""
    import skops.io as sio

    untrusted = _read(path, lambda: sio.get_untrusted_types(file=path))
    refused = [name for name in untrusted if not _skops_trusted(name)]
    if refused:
        raise UnsafeArtifactError(
            f"{path} names types bastion does not trust: {_few(refused)}; check it with "
            f"'bastion artifact scan {path}' and load it yourself only if you trust its source"
        )
    return _read(path, lambda: sio.load(path, trusted=untrusted))


def _skops_trusted(name: str) -> bool:
    """A class (never a function) from a package in ``SKOPS_TRUSTED_PACKAGES``."""
    module_name, _, attr = name.rpartition(".")
    if not any(module_name == p or module_name.startswith(p + ".")
               for p in SKOPS_TRUSTED_PACKAGES):
        return False
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type)


def _read(path: Path, read: Callable[[], Any], *errors: type[Exception]) -> Any:
    """Run a third-party reader, turning its parse errors (and ``errors``) into one line."""
    caught: tuple[type[Exception], ...] = (
        OSError, ValueError, RuntimeError, KeyError, EOFError, *errors
    )
    try:
        return read()
    except caught as e:
        if isinstance(e, FileNotFoundError | PermissionError):
            raise UnreadableInputError(f"cannot read {path} ({_line(e)})") from None
        raise UnsupportedFormatError(
            f"{path} looks like a model file but does not parse ({_line(e)}); re-export it"
        ) from None


def _few(items: Sequence[str], n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text[:160] + "...") if len(text) > 160 else text or type(error).__name__
