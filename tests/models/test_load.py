"""load_model on real files written in tmp_path: every loader, every refusal."""

from __future__ import annotations

import pickle
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from bastion.errors import (
    ConfigError,
    InputNotFoundError,
    UnreadableInputError,
    UnsafeArtifactError,
    UnsupportedFormatError,
    UnsupportedModelError,
)
from bastion.models.http import HttpClassifier
from bastion.models.load import load_model
from bastion.models.onnx import OnnxClassifier
from bastion.models.sklearn import SklearnClassifier
from bastion.models.torch import TorchClassifier
from bastion.typing import Differentiable

HELPER = textwrap.dedent('''
    import numpy as np
    from sklearn.base import BaseEstimator, TransformerMixin
    from torch import nn

    def tiny():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def wider():
        return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3), nn.Linear(3, 3))

    def not_a_module():
        return 42

    def double(x):
        return x * 2

    class Doubler(TransformerMixin, BaseEstimator):
        def fit(self, x, y=None):
            return self

        def transform(self, x):
            return np.asarray(x) * 2
''')
X = np.random.default_rng(0).random((6, 4)).astype(np.float32)


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory module importable as ``bastion_test_factories`` for this test."""
    import importlib
    import sys

    (tmp_path / "bastion_test_factories.py").write_text(HELPER)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("bastion_test_factories")
    sys.modules.pop("bastion_test_factories", None)


def _tiny(helpers: Any) -> nn.Module:
    torch.manual_seed(0)
    net: nn.Module = helpers.tiny()
    return net.eval()


def _expected(net: nn.Module, x: np.ndarray = X) -> np.ndarray:
    return torch.softmax(net(torch.from_numpy(x)), 1).detach().numpy()


def test_safetensors_with_factory(tmp_path: Path, helpers: Any) -> None:
    net = _tiny(helpers)
    save_file(net.state_dict(), tmp_path / "m.safetensors")
    model = load_model(tmp_path / "m.safetensors", input_shape=(4,),
                       factory="bastion_test_factories:tiny")
    assert isinstance(model, TorchClassifier) and isinstance(model, Differentiable)
    np.testing.assert_allclose(model.predict_proba(X), _expected(net), atol=1e-6)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (None, "weights only; pass --factory"),
        ("bastion_test_factories", "must look like package.module:function"),
        ("bastion_test_factories:nope", "cannot import factory"),
        ("no_such_module_xyz:f", "cannot import factory"),
        ("bastion_test_factories:not_a_module", "not an nn.Module"),
        ("bastion_test_factories:wider",
         r"missing 3\.bias, 3\.weight; .*0\.weight is \(8, 4\) in the file but \(16, 4\)"),
    ],
)
def test_safetensors_factory_errors(
    tmp_path: Path, helpers: Any, factory: str | None, match: str
) -> None:
    save_file(_tiny(helpers).state_dict(), tmp_path / "m.safetensors")
    with pytest.raises(ConfigError, match=match) as info:
        load_model(tmp_path / "m.safetensors", input_shape=(4,), factory=factory)
    assert "\n" not in str(info.value)


def test_unexpected_keys_are_named(tmp_path: Path, helpers: Any) -> None:
    weights = {**_tiny(helpers).state_dict(), "extra.bias": torch.zeros(2)}
    save_file(weights, tmp_path / "m.safetensors")
    with pytest.raises(ConfigError, match=r"unexpected extra\.bias"):
        load_model(tmp_path / "m.safetensors", input_shape=(4,),
                   factory="bastion_test_factories:tiny")


@pytest.mark.parametrize("layout", ["plain", "checkpoint", "legacy"])
def test_torch_state_dict_through_weights_only(tmp_path: Path, helpers: Any, layout: str) -> None:
    net = _tiny(helpers)
    path = tmp_path / "m.pt"
    if layout == "checkpoint":
        torch.save({"state_dict": net.state_dict(), "epoch": 3}, path)
    else:
        torch.save(net.state_dict(), path, _use_new_zipfile_serialization=layout == "plain")
    model = load_model(path, input_shape=(4,), factory="bastion_test_factories:tiny")
    np.testing.assert_allclose(model.predict_proba(X), _expected(net), atol=1e-6)


def test_whole_pickled_torch_model_is_refused(tmp_path: Path, helpers: Any) -> None:
    torch.save(_tiny(helpers), tmp_path / "full.pt")
    with pytest.raises(UnsafeArtifactError, match=r"whole pickled model.*bastion artifact scan"):
        load_model(tmp_path / "full.pt", input_shape=(4,), factory="bastion_test_factories:tiny")


def test_torch_file_of_something_else(tmp_path: Path) -> None:
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(UnsupportedModelError, match="holds a list, not a state dict"):
        load_model(tmp_path / "list.pt", input_shape=(4,), factory="x:y")


def test_torchscript(tmp_path: Path, helpers: Any) -> None:
    net = _tiny(helpers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt", input_shape=(4,), mean=0.5, std=0.25)
    assert isinstance(model, TorchClassifier)
    np.testing.assert_allclose(model.predict_proba(X), _expected(net, (X - 0.5) / 0.25),
                               atol=1e-6)
    with pytest.raises(ConfigError, match="--input-shape"):
        load_model(tmp_path / "m.pt")


def test_torch_export_reads_its_input_shape(tmp_path: Path, helpers: Any) -> None:
    net = _tiny(helpers)
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (torch.zeros(2, 4),), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "m.pt2")
    model = load_model(tmp_path / "m.pt2")
    assert isinstance(model, TorchClassifier) and model.input_shape == (4,)
    np.testing.assert_allclose(model.predict_proba(X), _expected(net), atol=1e-6)


def test_torch_export_with_fixed_batch_is_refused(tmp_path: Path, helpers: Any) -> None:
    torch.export.save(torch.export.export(_tiny(helpers), (torch.zeros(2, 4),)), tmp_path / "f.pt2")
    with pytest.raises(UnsupportedModelError, match=r"batches of exactly 2.*Dim"):
        load_model(tmp_path / "f.pt2")


def test_scanner_gates_unpickling_loaders(
    tmp_path: Path, helpers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bastion.supplychain import scanner

    seen: list[tuple[str, bool]] = []

    def refuse(path: Path, *, trust: bool = False) -> None:
        seen.append((Path(path).name, trust))
        if not trust:
            raise UnsafeArtifactError(f"refusing to load {path}")

    monkeypatch.setattr(scanner, "clear_for_loading", refuse)
    batch = torch.export.Dim("batch")
    program = torch.export.export(_tiny(helpers), (torch.zeros(2, 4),),
                                  dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "m.pt2")
    with pytest.raises(UnsafeArtifactError, match="refusing"):
        load_model(tmp_path / "m.pt2")
    assert isinstance(load_model(tmp_path / "m.pt2", trust=True), TorchClassifier)
    assert seen == [("m.pt2", False), ("m.pt2", True)]


def test_onnx_shape_from_graph(tmp_path: Path, helpers: Any) -> None:
    net = _tiny(helpers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(1, 4),), str(tmp_path / "m.onnx"), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})
    model = load_model(tmp_path / "m.onnx", bounds=(-1, 1))
    assert isinstance(model, OnnxClassifier) and model.bounds == (-1.0, 1.0)
    np.testing.assert_allclose(model.predict_proba(X), _expected(net), atol=1e-5)


def test_skops_linear_gets_a_twin_and_forest_stays_black_box(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    y = (X[:, 0] > 0.5).astype(int)
    logreg = LogisticRegression().fit(X, y)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    sio.dump(logreg, tmp_path / "lr.skops")
    sio.dump(forest, tmp_path / "rf.skops")
    lr_model = load_model(tmp_path / "lr.skops")
    rf_model = load_model(tmp_path / "rf.skops", input_shape=(2, 2))
    assert isinstance(lr_model, Differentiable) and lr_model.input_shape == (4,)
    np.testing.assert_allclose(lr_model.predict_proba(X), logreg.predict_proba(X), atol=1e-5)
    assert isinstance(rf_model, SklearnClassifier) and rf_model.input_shape == (2, 2)
    np.testing.assert_allclose(rf_model.predict_proba(X.reshape(-1, 2, 2)),
                               forest.predict_proba(X))


@pytest.mark.parametrize(
    ("step", "refused"),
    [
        ("custom-class", "bastion_test_factories.Doubler"),
        ("custom-function", "bastion_test_factories.double"),
        ("sklearn-function", "sklearn.utils.validation.check_array"),
    ],
)
def test_skops_refuses_untrusted_types(
    tmp_path: Path, helpers: Any, step: str, refused: str
) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.validation import check_array

    first = {
        "custom-class": helpers.Doubler(),
        "custom-function": FunctionTransformer(helpers.double),
        "sklearn-function": FunctionTransformer(check_array),
    }[step]
    pipe = make_pipeline(first, LogisticRegression()).fit(X, (X[:, 0] > 0.5).astype(int))
    sio.dump(pipe, tmp_path / "p.skops")
    with pytest.raises(UnsafeArtifactError, match=f"does not trust: .*{refused}"):
        load_model(tmp_path / "p.skops")


HOSTILE = {  # harmless if ever run (os.getcwd), and never run: the scanner refuses them
    "proto0": b"cposix\ngetcwd\n(tR.",
    "proto2": b"\x80\x02cposix\ngetcwd\n)R.",
    "proto4": b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06getcwd\x93)R.",
}


@pytest.mark.parametrize("payload", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("name", ["model.pkl", "model.bin", "model.safetensors"])
@pytest.mark.parametrize("trust", [False, True])
def test_hostile_pickles_are_refused_without_being_loaded(
    tmp_path: Path, payload: bytes, name: str, trust: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kw: object) -> None:
        raise AssertionError("a pickle was loaded")

    monkeypatch.setattr(pickle, "load", never)
    monkeypatch.setattr(pickle, "loads", never)
    (tmp_path / name).write_bytes(payload)
    with pytest.raises(UnsafeArtifactError, match="refusing to load") as info:
        load_model(tmp_path / name, input_shape=(4,), trust=trust)
    message = str(info.value)
    assert str(tmp_path / name) in message and "bastion artifact scan" in message
    assert "--trust" not in message  # trust never opens the door to an unpickler


@pytest.mark.parametrize("compress", [0, 3])
def test_cleared_sklearn_pickle_and_joblib_load_and_predict(tmp_path: Path, compress: int) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(clf, protocol=5))
    joblib.dump(clf, tmp_path / "m.joblib", compress=compress)
    for name in ("m.pkl", "m.joblib"):
        model = load_model(tmp_path / name, bounds=(-5.0, 5.0))
        np.testing.assert_allclose(model.predict_proba(x[:5]), clf.predict_proba(x[:5]),
                                   atol=1e-6)


def test_a_cleared_pickle_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(UnsupportedModelError, match="cannot adapt a dict"):
        load_model(tmp_path / "m.pkl")


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.onnx")
    with pytest.raises(UnreadableInputError, match="is a folder"):
        load_model(tmp_path)
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(UnsupportedFormatError, match="SavedModels are not loaded"):
        load_model(saved)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("x.npy", None, "content is numpy-npy; bastion loads ONNX"),
        ("empty.onnx", b"", "the file is empty"),
        ("notes.txt", b"hello\n", "content is text"),
        ("bad.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "does not parse"),
    ],
)
def test_unsupported_files(tmp_path: Path, name: str, content: bytes | None, match: str) -> None:
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(UnsupportedFormatError, match=match):
        load_model(path, input_shape=(4,), factory="bastion_test_factories:tiny")


def test_urls_become_http_classifiers() -> None:
    model = load_model("http://127.0.0.1:9/predict", n_classes=3, input_shape=(4,), token="t")
    assert isinstance(model, HttpClassifier) and model.n_classes == 3
    with pytest.raises(ConfigError, match="--n-classes and --input-shape"):
        load_model("https://example.invalid/predict", input_shape=(4,))
