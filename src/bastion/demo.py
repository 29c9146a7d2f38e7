"""The built-in demo: two small models trained in-process on data scikit-learn ships.

``build_demo`` trains a convolutional network on the 8x8 digits and a logistic
regression on the breast-cancer table (both seeded), saves them in safe formats
(safetensors with an architecture factory; skops), and loads them back through the
same loaders a user's files go through, so the demo exercises the real path.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bastion.data import Dataset
from bastion.progress import ProgressSink, emit
from bastion.report.finding import ArtifactInfo
from bastion.scan.check import Target
from bastion.scan.inputs import artifact_info
from bastion.scan.runner import NamedTarget

if TYPE_CHECKING:
    import torch

__all__ = ["build_demo", "digits_cnn"]

_EPOCHS = 12


def digits_cnn() -> torch.nn.Module:
    """The demo's architecture for 1x8x8 digit images (the safetensors factory)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def _train_cnn(train: Dataset, seed: int) -> torch.nn.Module:
    import torch

    from bastion.models.torch import one_thread

    assert train.y is not None  # the demo data always has labels
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(seed)
        model = digits_cnn()
    x = torch.as_tensor(train.x, dtype=torch.float32)
    y = torch.as_tensor(train.y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    with one_thread():
        _fit(model, opt, x, y, gen)
    return model.eval()


def _fit(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
         gen: torch.Generator) -> None:
    import torch

    for _ in range(_EPOCHS):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            torch.autograd.backward(loss)
            opt.step()


def _digits(workdir: Path, seed: int) -> tuple[NamedTarget, ArtifactInfo]:
    from safetensors.torch import save_file

    from bastion.data.demo import demo_digits
    from bastion.models import load_model

    train, test = demo_digits(seed=seed)
    path = workdir / "digits-cnn.safetensors"
    save_file(_train_cnn(train, seed).state_dict(), str(path))
    model = load_model(path, input_shape=train.sample_shape, factory="bastion.demo:digits_cnn")
    info = artifact_info("model", path)
    target = Target(model=model, model_path=path, model_format=info.format, train=train,
                    test=test)
    return NamedTarget("digits-cnn", target), info


def _standardise(train: Dataset, test: Dataset) -> tuple[Dataset, Dataset]:
    mean = train.x.mean(axis=0)
    std = train.x.std(axis=0) + 1e-12
    return (replace(train, x=((train.x - mean) / std).astype(np.float32)),
            replace(test, x=((test.x - mean) / std).astype(np.float32)))


def _breast_cancer(workdir: Path, seed: int) -> tuple[NamedTarget, ArtifactInfo]:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from bastion.data.demo import demo_breast_cancer
    from bastion.models import load_model

    train, test = _standardise(*demo_breast_cancer(seed=seed))
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(train.x, train.y)
    path = workdir / "breast-cancer-logreg.skops"
    sio.dump(clf, path)
    lo = float(np.floor(min(train.x.min(), test.x.min())))
    hi = float(np.ceil(max(train.x.max(), test.x.max())))
    model = load_model(path, input_shape=train.sample_shape, bounds=(lo, hi))
    info = artifact_info("model", path)
    target = Target(model=model, model_path=path, model_format=info.format, train=train,
                    test=test)
    return NamedTarget("breast-cancer-logreg", target), info


def build_demo(
    workdir: Path, *, seed: int = 0, progress: ProgressSink | None = None
) -> tuple[list[NamedTarget], list[ArtifactInfo]]:
    """Train, save and reload both demo models under ``workdir``; seeded end to end."""
    emit(progress, "demo models", 0, 2, "training digits-cnn")
    digits, digits_info = _digits(workdir, seed)
    emit(progress, "demo models", 1, 2, "training breast-cancer-logreg")
    cancer, cancer_info = _breast_cancer(workdir, seed)
    emit(progress, "demo models", 2, 2, "done")
    return [digits, cancer], [digits_info, cancer_info]
