"""Turn what the user named on the command line into scan targets.

Data is loaded first so that the model can be told the input shape; then the data
is validated against the model (shape, labels, NaN) before any check runs, so a bad
input stops the run with one line instead of surfacing as many check errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bastion.data import Dataset
from bastion.errors import ConfigError, NonNumericFeaturesError
from bastion.report.finding import ArtifactInfo
from bastion.scan.check import Target
from bastion.scan.runner import NamedTarget

__all__ = ["artifact_info", "load_targets", "parse_shape"]


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,8,8"`` → ``(1, 8, 8)``; a one-line ConfigError for anything else."""
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise ConfigError(f"--input-shape {text!r} must be positive integers like 1,8,8")
    return shape


def artifact_info(role: str, path: Path) -> ArtifactInfo:
    """Identity of an input file: content hash, size and detected format."""
    from bastion.formats import detect_format, sha256_file

    if path.is_dir():
        return ArtifactInfo(role=role, path=str(path), sha256="", size_bytes=0, format="directory")
    return ArtifactInfo(
        role=role, path=str(path), sha256=sha256_file(path),
        size_bytes=path.stat().st_size, format=str(detect_format(path)),
    )


def _load_pair(data: Path | None, test: Path | None,
               label: str | None) -> tuple[Dataset | None, Dataset | None]:
    if data is not None and test is not None:
        from bastion.data import load_split

        # Loaded together so text class names map to the same label numbers in both.
        return load_split(data, test, label=label)
    return _load_data(data, label), _load_data(test, label)


def _load_data(path: Path | None, label: str | None) -> Dataset | None:
    if path is None:
        return None
    from bastion.data import load_dataset

    return load_dataset(path, label=label)


def _bounds(data: list[Dataset]) -> tuple[float, float]:
    """Images live in [0, 1]; tabular features in the rounded range the data spans."""
    finite = [d.x[np.isfinite(d.x)] for d in data if d.kind == "tabular"]
    finite = [f for f in finite if f.size]
    if not finite:
        return (0.0, 1.0)
    return (float(np.floor(min(f.min() for f in finite))),
            float(np.ceil(max(f.max() for f in finite))))


def load_targets(
    *,
    model: str | None,
    data: Path | None,
    test: Path | None,
    label: str | None = None,
    input_shape: str | None = None,
    factory: str | None = None,
    n_classes: int | None = None,
    token: str | None = None,
    trust: Sequence[Path] = (),
) -> tuple[list[NamedTarget], list[ArtifactInfo]]:
    """Load data, then the model (scanner-gated loaders), and validate them together.

    ``trust`` lists model files to load even when the scanner flags them; ``token`` is a
    bearer token for an HTTP model (from ``BASTION_SCAN_TOKEN``, never a logged flag).
    """
    try:
        train, held_out = _load_pair(data, test, label)
    except NonNumericFeaturesError:
        if model is not None:
            raise  # a model needs numbers; the message says how to encode them
        # Without a model, text columns are what the file checks (PII) are for.
        train = held_out = None
    artifacts = [artifact_info(role, p) for role, p in (("train", data), ("test", test)) if p]
    target = Target(train=train, test=held_out, train_file=data)
    if model is not None:
        from bastion.data.validate import validate_for_model
        from bastion.models import load_model

        sample = held_out if held_out is not None else train
        shape = parse_shape(input_shape) or (sample.sample_shape if sample else None)
        trusted = not model.startswith(("http://", "https://")) and \
            Path(model).resolve() in {p.resolve() for p in trust}
        target.model = load_model(model, input_shape=shape, factory=factory,
                                  n_classes=n_classes, token=token, trust=trusted,
                                  bounds=_bounds([d for d in (train, held_out) if d]))
        for ds in (train, held_out):
            if ds is not None:
                validate_for_model(ds, target.model)
        if not model.startswith(("http://", "https://")):
            target.model_path = Path(model)
            info = artifact_info("model", target.model_path)
            target.model_format = info.format
            artifacts.insert(0, info)
    name = Path(model).stem if model and "://" not in model else "target"
    return [NamedTarget(name, target)], artifacts
