"""``check_check``: the contract every scan check passes.

A check must describe itself (kebab name equal to its registry name, title, OWASP and
ATLAS ids of the right shape, ``needs`` the runner can explain when it skips), must
not apply to an empty target, must not apply where its declared needs are missing,
and on each small clean target it applies to must return findings that name it, stay
within the ids it declares, serialise to JSON, and are the same for the same seed.

The targets come from :func:`synthetic_targets`: a tabular and an image task, each with
labelled train and test data, a small linear model (a ``TorchClassifier`` when torch
is installed, so white-box checks run too, else a numpy adapter) and its weights in a
model file. A check for other data can pass its own ``make_targets``.
"""

from __future__ import annotations

import re
import tempfile
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bastion.data.dataset import Dataset
from bastion.registry import Registry
from bastion.report.finding import Finding, Severity
from bastion.scan.check import CHECKS, NEED_HINTS, Check, Need, ScanContext, Target
from bastion.typing import Classifier

__all__ = ["check_check", "synthetic_targets"]

_OWASP = re.compile(r"^ML(0[1-9]|10)$")
_ATLAS = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")
_KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_SEED = 3


@dataclass
class _Softmax:
    """A numpy linear softmax classifier: the suite's model when torch is missing."""

    weights: np.ndarray
    bias: np.ndarray
    input_shape: tuple[int, ...]
    bounds: tuple[float, float] = (0.0, 1.0)
    n_queries: int = 0
    n_classes: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_classes = int(self.bias.shape[0])

    def reset_queries(self) -> None:
        self.n_queries = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.n_queries += len(x)
        z = np.asarray(x, np.float64).reshape(len(x), -1) @ self.weights.T + self.bias
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True), np.float32)


def _task(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Separable classes in [0, 1]: three tabular blobs, or bright-top vs bright-bottom."""
    n = 90
    if kind == "tabular":
        y = np.arange(n) % 3
        centres = np.array([[0.2, 0.2, 0.5, 0.5], [0.8, 0.3, 0.5, 0.4], [0.5, 0.8, 0.4, 0.6]])
        x = np.clip(centres[y] + rng.normal(0, 0.08, (n, 4)), 0, 1)
        return x.astype(np.float32), y, (4,)
    y = np.arange(n) % 2
    x = rng.random((n, 1, 8, 8)) * 0.5
    rows = np.where(y[:, None] == 1, np.arange(8) < 4, np.arange(8) >= 4)
    x[:, 0] += 0.5 * rows[:, :, None]
    return x.astype(np.float32), y, (1, 8, 8)


def _fit(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent (small, exact)."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    w, b = np.zeros((n_classes, flat.shape[1])), np.zeros(n_classes)
    onehot = np.eye(n_classes)[y]
    for _ in range(300):
        z = flat @ w.T + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / len(x)
        w -= 2.0 * grad.T @ flat
        b -= 2.0 * grad.sum(axis=0)
    return w, b


def _model(w: np.ndarray, b: np.ndarray, shape: tuple[int, ...]) -> Classifier:
    try:
        import torch

        from bastion.models import TorchClassifier
    except ImportError:
        return _Softmax(weights=w, bias=b, input_shape=shape)
    linear = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w))
        linear.bias.copy_(torch.from_numpy(b))
    net = torch.nn.Sequential(torch.nn.Flatten(), linear)
    return TorchClassifier(net, input_shape=shape, n_classes=w.shape[0])


def synthetic_targets(folder: Path, *, seed: int = 0) -> list[Target]:
    """A tabular and an image target, each complete: model, model file, train and test."""
    rng = np.random.default_rng(seed)
    targets = []
    for kind in ("tabular", "image"):
        x, y, shape = _task(kind, rng)
        n_classes = int(y.max()) + 1
        w, b = _fit(x[:60], y[:60], n_classes)
        path = folder / f"{kind}-model.npz"
        np.savez(path, weight=w, bias=b)
        path.chmod(0o644)
        names = tuple(f"f{i}" for i in range(x.shape[1])) if kind == "tabular" else ()
        data = {part: Dataset(x=x[rows], y=y[rows], kind=kind, feature_names=names,
                              class_names=tuple(f"c{c}" for c in range(n_classes)),
                              name=f"{kind}-{part}")
                for part, rows in (("train", slice(0, 60)), ("test", slice(60, None)))}
        targets.append(Target(model=_model(w, b, shape), model_path=path,
                              model_format="numpy-npz", train=data["train"],
                              test=data["test"]))
    return targets


def _describes_itself(name: str, cls: type[Check], registry: Registry[type[Check]]) -> None:
    for attr, kind in (("name", str), ("title", str), ("owasp", tuple), ("atlas", tuple),
                       ("needs", tuple)):
        assert isinstance(getattr(cls, attr, None), kind), \
            f"{name}: class attribute {attr} must be a {kind.__name__}"
    assert _KEBAB.match(cls.name), f"{name}: name must be lowercase kebab-case"
    registered = [n for n, c in registry.items() if c is cls]
    assert registered == [cls.name], \
        f"{name}: registered as {registered or 'nothing'}, must be exactly [{cls.name!r}]"
    assert cls.title.strip(), f"{name}: needs a title"
    assert cls.owasp or cls.atlas, f"{name}: must map to OWASP or ATLAS"
    assert all(isinstance(i, str) and _OWASP.match(i) for i in cls.owasp), \
        f"{name}: OWASP ids {cls.owasp} must look like ML01..ML10"
    assert all(isinstance(i, str) and _ATLAS.match(i) for i in cls.atlas), \
        f"{name}: ATLAS ids {cls.atlas} must look like AML.T0000 or AML.T0000.000"
    known = set(typing.get_args(Need))
    assert set(cls.needs) <= known & set(NEED_HINTS), \
        f"{name}: needs {set(cls.needs) - known} have no skip reason the runner can give"


def _json_ready(name: str, f: Finding, cls: type[Check]) -> None:
    assert isinstance(f, Finding), f"{name}: run returned {type(f).__name__}, not Finding"
    assert f.check == name, f"{name}: finding {f.id} names check {f.check!r}"
    assert f.id.startswith(f"{name}/"), f"{name}: finding id {f.id!r} must start {name}/"
    assert isinstance(f.severity, Severity), f"{name}: {f.id} severity is not a Severity"
    assert set(f.owasp) <= set(cls.owasp), f"{name}: {f.id} uses undeclared OWASP ids"
    assert set(f.atlas) <= set(cls.atlas), f"{name}: {f.id} uses undeclared ATLAS ids"
    assert all(m.unit for m in f.metrics), f"{name}: {f.id} has a metric without a unit"
    try:
        Finding.model_validate_json(f.model_dump_json())
    except ValueError as err:
        raise AssertionError(f"{name}: {f.id} does not survive JSON: {err}") from err


def _summary(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return sorted((f.id, f.severity.value, f.title) for f in findings)


def _run(name: str, check: Check, target: Target) -> list[Finding]:
    try:
        found = check.run(target, ScanContext(seed=_SEED))
    except Exception as err:  # the contract: a clean target never makes a check fail
        raise AssertionError(f"{name}: run raised {type(err).__name__}: {err}") from err
    assert isinstance(found, list), f"{name}: run must return a list"
    return found


def check_check(
    check_cls: type[Check],
    *,
    make_targets: Callable[[Path], list[Target]] = synthetic_targets,
    registry: Registry[type[Check]] = CHECKS,
) -> None:
    """Raise AssertionError naming the broken rule.

    ``make_targets(folder)`` builds fresh targets (model files go in ``folder``); it is
    called twice so that the first target the check applies to can be run twice on
    fresh copies, and both runs must agree.
    """
    name = getattr(check_cls, "name", check_cls.__name__)
    _describes_itself(name, check_cls, registry)
    check = check_cls()
    assert isinstance(check, Check), f"{name}: instances must satisfy the Check protocol"
    empty = Target()
    assert not check.applies(empty), f"{name}: must not apply to an empty target"
    assert empty.missing(check_cls.needs), f"{name}: declares no needs, so it cannot be skipped"
    with tempfile.TemporaryDirectory(prefix="bastion-check-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        twins = make_targets(folder)
        repeated = False
        for target, twin in zip(make_targets(folder), twins, strict=True):
            if not check.applies(target):
                continue
            assert not target.missing(check_cls.needs), \
                f"{name}: applies although {target.missing(check_cls.needs)} are missing"
            found = _run(name, check, target)
            for f in found:
                _json_ready(name, f, check_cls)
            if not repeated:  # once is enough to catch unseeded randomness, and checks are slow
                assert _summary(found) == _summary(_run(name, check, twin)), \
                    f"{name}: not deterministic for one seed"
                repeated = True
