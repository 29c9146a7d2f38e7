"""The hardening contract: what a defense is, what it returns, and how it is found by name.

A **hardener** is a frozen, keyword-only dataclass configured by its constructor (its
fields are its hyper-parameters, no logic in ``__init__``) and registered in
:data:`HARDENERS` under a kebab name::

    @HARDENERS.register("pgd-at")
    @dataclass(frozen=True, kw_only=True)
    class PGDAdversarialTraining:
        requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
        masks_gradients: ClassVar[bool] = False
        eps: float = 8 / 255
        epochs: int = 10

        def apply(self, model, train, *, val=None, seed=0, progress=None) -> HardenResult: ...

``apply(model, train, *, val, seed, progress)`` returns a :class:`HardenResult` holding a
**new** model: the user's model (and the module inside it) is never mutated; training
defenses deep-copy it first (:func:`copy_torch_model`), wrappers wrap it unchanged.
``requires`` lists the Protocols the model must offer (``Differentiable`` for anything
that trains with gradients); :func:`check_applicable` turns a miss into a one-line
``UnsupportedModelError`` naming the methods that would work. ``masks_gradients`` marks
defenses whose gradients mislead attacks (input transforms, randomised wrappers): their
before/after evaluation must also run adaptive attacks (BPDA, EOT) on the views listed in
``HardenResult.adaptive`` and judge success on the deployed ``HardenResult.model``.

Saving is the CLI's job, from what the result says:

* ``module`` set, ``export="safetensors"``: ``module.state_dict()`` goes to
  ``model.safetensors``; the architecture comes from the user's ``--factory
  module:callable`` (a zero-argument callable returning the ``nn.Module``).
* ``module`` set, ``export="onnx"`` (or no factory): the module, behind the input
  adapter's normalisation, is exported to ``model.onnx``; no factory needed.
* ``members`` set (an ensemble): each trained network is saved the same way, as
  ``member-1.safetensors``, ``member-2.safetensors``... (or ``.onnx``).
* neither: the defense wraps the user's unchanged network, whose file is copied.
* ``wrapper``: JSON-safe settings (e.g. transform name and parameters) that rebuild the
  deployed wrapper around the saved network; written, with the method and its
  hyper-parameters, the adapter's input shape, bounds and normalisation, to
  ``hardening.json`` beside the weights.

Hardeners are looked up with :func:`build_hardener`, which also turns ``key=value``
strings from the command line into typed field values (so a new defense gets CLI options
for free) and refuses unknown keys with the list of known ones.

This module stays importable without torch.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from bastion.errors import ConfigError, UnsupportedModelError
from bastion.registry import Registry
from bastion.typing import Classifier

if TYPE_CHECKING:
    import torch

    from bastion.data import Dataset
    from bastion.models.torch import TorchClassifier
    from bastion.progress import ProgressSink

__all__ = [
    "HARDENERS",
    "HardenResult",
    "Hardener",
    "build_hardener",
    "check_applicable",
    "copy_torch_model",
    "hardener_name",
    "parse_fraction",
    "supported_hardeners",
]

Export = Literal["safetensors", "onnx"]


@dataclass(frozen=True, kw_only=True)
class HardenResult:
    """A hardened model and what the CLI needs to save and evaluate it.

    ``model`` is the deployed model (a new object). ``module`` is the trained network to
    save (None when the defense only wraps the user's unchanged network, which is then
    saved as given); ``members`` are the trained networks of an ensemble. ``adaptive``
    holds ``(label, view)`` pairs for gradient-masking defenses: each view is what an
    adaptive attack differentiates (BPDA's straight-through approximation, EOT's
    averaged logits); success is always judged on ``model``.
    ``log`` has one mapping per epoch (``epoch``, ``loss``, ``clean_accuracy``,
    ``robust_accuracy``, ``eps``... whatever applies); ``metrics`` holds final numbers
    (``epsilon`` for DP-SGD, ``temperature``...); ``notes`` are sentences for the report
    (a flagged catastrophic overfitting, a restored checkpoint, an early stop).
    """

    model: Classifier
    method: str
    masks_gradients: bool = False
    module: torch.nn.Module | None = None
    members: tuple[torch.nn.Module, ...] = ()
    export: Export = "safetensors"
    wrapper: Mapping[str, Any] = field(default_factory=dict)
    adaptive: tuple[tuple[str, Classifier], ...] = ()
    log: tuple[Mapping[str, float], ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class Hardener(Protocol):
    """A configured defense; see the module docstring for the full contract."""

    requires: ClassVar[tuple[type, ...]]
    masks_gradients: ClassVar[bool]

    def apply(
        self, model: Classifier, train: Dataset, *, val: Dataset | None = None, seed: int = 0,
        progress: ProgressSink | None = None,
    ) -> HardenResult: ...


HARDENERS: Registry[type[Hardener]] = Registry(
    "hardening method", packages=("bastion.defenses",)
)


def hardener_name(cls: type[Hardener]) -> str:
    """The name ``cls`` is registered under (its class name if it is not registered)."""
    return HARDENERS.name_of(cls) or cls.__name__


def supported_hardeners(model: object) -> list[str]:
    """Names of the registered hardening methods whose requirements ``model`` meets."""
    return HARDENERS.accepting(model)


def check_applicable(hardener: Hardener, model: object) -> None:
    """Raise a one-line ``UnsupportedModelError`` when ``model`` lacks what ``hardener`` needs."""
    missing = [r.__name__ for r in hardener.requires if not isinstance(model, r)]
    if not missing:
        return
    name = hardener_name(type(hardener))
    works = [n for n in supported_hardeners(model) if n != name]
    raise UnsupportedModelError(
        f"hardening method {name!r} needs a {' and '.join(missing)} model (gradients: a torch "
        f"network or a scikit-learn linear/MLP model) but got {type(model).__name__}; this "
        f"model supports: {', '.join(works) or 'no registered method'}"
    )


def build_hardener(name: str, params: Mapping[str, Any] | None = None) -> Hardener:
    """The hardener ``name`` configured with ``params``; string values are parsed by field type.

    ``params`` comes from the command line (``--set eps=0.03``) or from code (typed values
    pass through). Unknown keys and unparsable values raise ``ConfigError``.
    """
    cls = HARDENERS.get(name)
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f"hardening method {name!r} is not configurable")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in (params or {}).items():
        attr = key.replace("-", "_")
        if attr not in fields:
            known = ", ".join(k.replace("_", "-") for k in sorted(fields)) or "none"
            raise ConfigError(f"{name} has no parameter {key!r}; known: {known}")
        kwargs[attr] = _parse(raw, hints[attr], f"{name} {key}") if isinstance(raw, str) else raw
    try:
        built: Hardener = cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"invalid parameters for {name}: {e}") from None
    return built


def _parse(raw: str, hint: Any, what: str) -> Any:
    """A command-line string as the field's type (bool, int, float, str, Literal, tuples, None)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if raw.lower() in ("none", "null") and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _parse(raw, option, what)
            except ConfigError:
                continue
        raise ConfigError(f"{what}={raw!r} does not parse as {hint}")
    if origin is Literal:
        if raw in args:
            return raw
        raise ConfigError(f"{what} must be one of {', '.join(map(str, args))}; got {raw!r}")
    if origin is tuple:
        items = [s.strip() for s in raw.split(",") if s.strip()]
        inner = args[0] if args else str
        return tuple(_parse(s, inner, what) for s in items)
    if hint is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{what} must be true or false; got {raw!r}")
    if hint is int or hint is float:
        try:
            return int(raw) if hint is int else parse_fraction(raw)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"{what} must be a number ({hint.__name__}); got {raw!r}") from None
    if hint is str:
        return raw
    raise ConfigError(f"{what} cannot be set from the command line")


def parse_fraction(raw: str) -> float:
    """``"8/255"`` or ``"0.03"`` as a float: budgets are usually written as fractions."""
    if "/" in raw:
        num, den = raw.split("/", 1)
        return float(num) / float(den)
    return float(raw)


def copy_torch_model(model: Classifier) -> TorchClassifier:
    """A deep copy of a torch-backed adapter: same weights and settings, nothing shared.

    Training defenses start from this so the user's model is never mutated. A network
    with every parameter frozen (the torch twin of a scikit-learn model) gets them all
    trainable again; one that freezes only some layers keeps that choice. A
    TorchScript module is copied through an in-memory save and load of our own bytes:
    ``deepcopy`` gives it parameters that are not leaves, which no optimiser accepts.
    """
    import torch

    from bastion.models.torch import TorchClassifier

    if not isinstance(model, TorchClassifier):
        raise UnsupportedModelError(
            f"this hardening method trains a torch network but got {type(model).__name__}; "
            "give a torch model (safetensors with --factory, TorchScript) or a scikit-learn "
            "linear/MLP model"
        )
    copied = copy.deepcopy(model)
    if isinstance(model.module, torch.jit.ScriptModule):
        import io
        import warnings

        buffer = io.BytesIO()
        torch.jit.save(model.module, buffer)
        buffer.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation note on torch.jit.load
            jit_load: Any = torch.jit.load  # untyped in torch's stubs
            copied.module = jit_load(buffer, map_location=model.device).eval()
    if not any(p.requires_grad for p in copied.module.parameters()):
        copied.module.requires_grad_(True)
    return copied
