"""ONNX, SavedModel and Keras checks on files built in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.report.finding import Severity
from bastion.supplychain import scan_path
from bastion.supplychain._graphs import (
    scan_keras_config,
    scan_keras_h5,
    scan_onnx,
    scan_savedmodel,
)

onnx = pytest.importorskip("onnx")


def _model(domain: str = "", location: str | None = None) -> bytes:
    node = onnx.helper.make_node("Relu" if not domain else "Foo", ["x"], ["y"], domain=domain)
    weight = onnx.helper.make_tensor("w", 1, [1], [1.0])
    if location is not None:
        weight.data_location = onnx.TensorProto.EXTERNAL
        weight.ClearField("float_data")
        entry = weight.external_data.add()
        entry.key, entry.value = "location", location
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", 1, [1])],
        [onnx.helper.make_tensor_value_info("y", 1, [1])], [weight])
    return bytes(onnx.helper.make_model(graph).SerializeToString())


@pytest.mark.parametrize(("location", "escapes"), [
    ("weights.bin", False), ("sub/w.bin", False), ("../secret", True), ("/etc/passwd", True),
    ("a/../../b", True), ("C:\\x", True), ("a/../b", False)])
def test_onnx_external_data(location: str, escapes: bool) -> None:
    rules = {i.rule for i in scan_onnx(_model(location=location))}
    assert ("external-data-traversal" in rules) is escapes


def test_onnx_custom_domain() -> None:
    assert scan_onnx(_model()) == []
    [issue] = scan_onnx(_model(domain="evil.ops"))
    assert issue.rule == "custom-operator" and issue.severity is Severity.MEDIUM


def test_onnx_garbage_is_a_finding() -> None:
    assert scan_onnx(b"\xff" * 32)[0].rule == "malformed-onnx"


def _field(number: int, payload: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            byte, n = n & 0x7F, n >> 7
            out += bytes([byte | (0x80 if n else 0)])
            if not n:
                return out
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _saved_model(graph_ops: list[str], function_ops: list[str]) -> bytes:
    nodes = b"".join(_field(1, _field(1, f"n{i}".encode()) + _field(2, op.encode()))
                     for i, op in enumerate(graph_ops))
    function = _field(1, b"".join(_field(3, _field(2, op.encode())) for op in function_ops))
    graph = nodes + _field(2, function)
    return b"\x08\x01" + _field(2, _field(2, graph))


def test_savedmodel_ops_in_graph_and_functions() -> None:
    data = _saved_model(["Const", "MatMul", "ReadFile"], ["PyFunc", "Identity"])
    found = {(i.subject, i.severity) for i in scan_savedmodel(data)}
    assert found == {("ReadFile", Severity.HIGH), ("PyFunc", Severity.CRITICAL)}
    assert scan_savedmodel(_saved_model(["Const", "SaveV2", "RestoreV2"], [])) == []
    assert scan_savedmodel(b"\x12\xff\xff")[0].rule == "malformed-savedmodel"


def test_savedmodel_field_numbers_match_tensorflow_protos() -> None:
    """Oracle: a MetaGraphDef built with TensorFlow's own protobuf classes (tensorboard)."""
    pb = pytest.importorskip("tensorboard.compat.proto.meta_graph_pb2")
    meta = pb.MetaGraphDef()
    meta.graph_def.node.add(name="w", op="WriteFile")
    meta.graph_def.library.function.add().node_def.add(name="p", op="EagerPyFunc")
    data = b"\x08\x01" + _field(2, meta.SerializeToString())  # SavedModel.meta_graphs = 2
    assert {i.subject for i in scan_savedmodel(data)} == {"WriteFile", "EagerPyFunc"}


KERAS2_LAMBDA = {"class_name": "Sequential", "config": {"layers": [
    {"class_name": "Dense", "config": {"units": 2}},
    {"class_name": "Lambda", "config": {"function": ["4wAAAA==", None, None],
                                        "function_type": "lambda"}}]}}
KERAS3_CUSTOM = {"module": "keras", "class_name": "Functional", "config": {"layers": [
    {"module": "keras.layers", "class_name": "Dense", "config": {}},
    {"module": "evil_pkg.layers", "class_name": "Backdoor", "config": {}}]}}


def test_keras_configs() -> None:
    assert {(i.rule, i.severity) for i in scan_keras_config(KERAS2_LAMBDA)} == {
        ("keras-lambda", Severity.CRITICAL)}
    assert {(i.rule, i.subject) for i in scan_keras_config(KERAS3_CUSTOM)} == {
        ("keras-custom-object", "evil_pkg.layers")}
    assert scan_keras_config({"class_name": "Sequential", "module": "keras", "config": {}}) == []


def test_keras_h5(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(KERAS2_LAMBDA)
    assert [i.rule for i in scan_keras_h5(str(path))] == ["keras-lambda"]
    assert [i.rule for i in scan_keras_h5(path.read_bytes())] == ["keras-lambda"]
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["w"] = [1.0, 2.0]
    formats = {Path(f.path).name: f.format for f in scan_path(tmp_path).files}
    assert formats == {"m.h5": "keras-h5", "plain.h5": "hdf5"}
