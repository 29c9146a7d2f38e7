"""OnnxClassifier on real ONNX files: logits vs probabilities, sklearn-style outputs, shapes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save_model

from bastion.errors import ConfigError, ShapeMismatchError, UnsupportedModelError
from bastion.models.onnx import OnnxClassifier
from bastion.typing import Classifier, Differentiable

W = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -1.0]], dtype=np.float32)  # 2 features → 3 classes
B = np.array([0.1, 0.0, -0.2], dtype=np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _linear_onnx(
    path: Path,
    *,
    head: str | None = None,
    out_name: str = "scores",
    in_dims: list[int | str] | None = None,
    weight: np.ndarray = W,
    bias: np.ndarray = B,
    elem: int = TensorProto.FLOAT,
) -> Path:
    """x @ W + B, optionally followed by a Softmax/Sigmoid/Identity node."""
    np_type = np.float32 if elem == TensorProto.FLOAT else np.float64
    inits = [numpy_helper.from_array(weight.astype(np_type), "W"),
             numpy_helper.from_array(bias.astype(np_type), "B")]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["z" if head else out_name])]
    if head:
        nodes.append(helper.make_node(head, ["z"], [out_name]))
    x = helper.make_tensor_value_info("x", elem, in_dims or ["n", weight.shape[0]])
    y = helper.make_tensor_value_info(out_name, elem, ["n", weight.shape[1]])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, path)
    return path


X = np.array([[0.0, 0.0], [1.0, 0.5], [0.2, 0.9], [0.7, 0.1]], dtype=np.float32)
Z = X @ W + B


@pytest.mark.parametrize(
    ("head", "out_name", "expected_prob"),
    [
        (None, "scores", False),
        ("Softmax", "scores", True),
        (None, "probabilities", True),
        ("Identity", "out", False),
        ("Relu", "out", False),
    ],
)
def test_auto_detects_logits_or_probabilities(
    tmp_path: Path, head: str | None, out_name: str, expected_prob: bool
) -> None:
    model = OnnxClassifier(_linear_onnx(tmp_path / "m.onnx", head=head, out_name=out_name))
    assert model.outputs_probabilities is expected_prob
    assert isinstance(model, Classifier) and not isinstance(model, Differentiable)
    assert model.input_shape == (2,) and model.n_classes == 3


def test_logits_are_softmaxed(tmp_path: Path) -> None:
    model = OnnxClassifier(_linear_onnx(tmp_path / "m.onnx"), batch_size=3)
    np.testing.assert_allclose(model.predict_proba(X), _softmax(Z), atol=1e-6)
    assert model.n_queries == 4


def test_probabilities_pass_through(tmp_path: Path) -> None:
    model = OnnxClassifier(_linear_onnx(tmp_path / "m.onnx", head="Softmax"))
    np.testing.assert_allclose(model.predict_proba(X), _softmax(Z), atol=1e-6)


def test_explicit_output_kind_overrides_auto(tmp_path: Path) -> None:
    path = _linear_onnx(tmp_path / "m.onnx", head="Softmax")
    as_logits = OnnxClassifier(path, output="logits").predict_proba(X)
    np.testing.assert_allclose(as_logits, _softmax(_softmax(Z)), atol=1e-6)
    with pytest.raises(ConfigError, match="auto, probabilities or logits"):
        OnnxClassifier(path, output="scores")  # type: ignore[arg-type]


@pytest.mark.parametrize(("head", "expected"), [("Sigmoid", "sig"), (None, "logit")])
def test_single_unit_is_binary(tmp_path: Path, head: str | None, expected: str) -> None:
    w, b = W[:, :1], B[:1]
    model = OnnxClassifier(_linear_onnx(tmp_path / "m.onnx", head=head, weight=w, bias=b))
    z = (X @ w + b)[:, 0]
    p1 = 1 / (1 + np.exp(-z))
    assert model.n_classes == 2
    np.testing.assert_allclose(model.predict_proba(X), np.stack([1 - p1, p1], 1), atol=1e-6)
    assert model.outputs_probabilities is (expected == "sig")


def test_multi_unit_sigmoid_is_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="multi-label"):
        OnnxClassifier(_linear_onnx(tmp_path / "m.onnx", head="Sigmoid"))


def test_double_precision_inputs(tmp_path: Path) -> None:
    model = OnnxClassifier(_linear_onnx(tmp_path / "m.onnx", elem=TensorProto.DOUBLE))
    np.testing.assert_allclose(model.predict_proba(X.astype(np.float64)),
                               _softmax(X.astype(np.float64) @ W + B), atol=1e-6)


def test_sklearn_style_label_and_zipmap(tmp_path: Path) -> None:
    """skl2onnx's layout: an int64 label output first, then ZipMap'ed probabilities."""
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")]
    nodes = [
        helper.make_node("Gemm", ["x", "W", "B"], ["z"]),
        helper.make_node("Softmax", ["z"], ["p"]),
        helper.make_node("ArgMax", ["p"], ["label"], axis=1, keepdims=0),
        helper.make_node("ZipMap", ["p"], ["output_probability"], domain="ai.onnx.ml",
                         classlabels_int64s=[0, 1, 2]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])
    label = helper.make_tensor_value_info("label", TensorProto.INT64, ["n"])
    zipmap = helper.make_value_info(
        "output_probability",
        helper.make_sequence_type_proto(
            helper.make_map_type_proto(TensorProto.INT64,
                                       helper.make_tensor_type_proto(TensorProto.FLOAT, []))),
    )
    graph = helper.make_graph(nodes, "skl", [x], [label, zipmap], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    save_model(model, tmp_path / "skl.onnx")
    clf = OnnxClassifier(tmp_path / "skl.onnx")
    assert clf.outputs_probabilities and clf.n_classes == 3
    np.testing.assert_allclose(clf.predict_proba(X), _softmax(Z), atol=1e-6)


def test_input_shape_from_graph_or_given(tmp_path: Path) -> None:
    fixed = _linear_onnx(tmp_path / "fixed.onnx", in_dims=["n", 2])
    dynamic = _linear_onnx(tmp_path / "dyn.onnx", in_dims=["n", "f"])
    assert OnnxClassifier(fixed).input_shape == (2,)
    assert OnnxClassifier(fixed, input_shape=(2,)).input_shape == (2,)
    with pytest.raises(ShapeMismatchError, match="does not fit"):
        OnnxClassifier(fixed, input_shape=(3,))
    with pytest.raises(ConfigError, match="not fixed"):
        OnnxClassifier(dynamic)
    assert OnnxClassifier(dynamic, input_shape=(2,)).input_shape == (2,)
    with pytest.raises(ShapeMismatchError, match="check --input-shape"):
        OnnxClassifier(dynamic, input_shape=(5,))


def test_fixed_batch_of_one_is_run_sample_by_sample(tmp_path: Path) -> None:
    model = OnnxClassifier(_linear_onnx(tmp_path / "m.onnx", in_dims=[1, 2]))
    np.testing.assert_allclose(model.predict_proba(X), _softmax(Z), atol=1e-6)


def test_shape_errors_cost_no_queries(tmp_path: Path) -> None:
    model = OnnxClassifier(_linear_onnx(tmp_path / "m.onnx"))
    with pytest.raises(ShapeMismatchError):
        model.predict_proba(np.zeros((2, 3), np.float32))
    assert model.n_queries == 0


def test_not_an_onnx_model(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(UnsupportedModelError, match="onnxruntime cannot load"):
        OnnxClassifier(tmp_path / "bad.onnx")


def test_torch_exported_model_matches_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 2 * 2, 4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(1, 1, 4, 4),), str(tmp_path / "net.onnx"),
                          dynamo=False, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
    model = OnnxClassifier(tmp_path / "net.onnx")
    x = np.random.default_rng(0).random((5, 1, 4, 4)).astype(np.float32)
    expected = torch.softmax(net(torch.from_numpy(x)), 1).detach().numpy()
    assert model.input_shape == (1, 4, 4) and not model.outputs_probabilities
    np.testing.assert_allclose(model.predict_proba(x), expected, atol=1e-5)


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    """Weights that point at ``../secret`` must never be read into the model."""
    (tmp_path / "secret.bin").write_bytes(b"A" * 24)
    (tmp_path / "sub").mkdir()
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2, 3],
                         data_location=TensorProto.EXTERNAL)
    for key, value in {"location": "../secret.bin", "offset": "0", "length": "24"}.items():
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y],
                              initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "sub" / "m.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(UnsupportedModelError, match="escapes model directory"):
        OnnxClassifier(tmp_path / "sub" / "m.onnx")
