"""Graph formats that can reach code or files: ONNX, TensorFlow SavedModel, Keras.

* ONNX: external-data paths that escape the model folder; operators from custom
  domains (they need a native library registered with the runtime).
* SavedModel: ops that read or write files or call back into Python, found by walking
  the protobuf wire format by hand (no TensorFlow, no generated modules needed).
* Keras (``.h5`` and ``.keras``): Lambda layers (marshalled Python bytecode) and custom
  objects resolved from arbitrary modules.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Iterator
from typing import Any

from bastion.report.finding import Severity
from bastion.supplychain._headers import CannotScan
from bastion.supplychain._issue import Issue

__all__ = ["scan_keras_config", "scan_keras_h5", "scan_onnx", "scan_savedmodel"]

_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training",
                           "com.microsoft", "com.microsoft.nchwc", "org.pytorch.aten"})


def scan_onnx(data: Any) -> list[Issue]:
    """External data that leaves the model folder, and operators from custom domains."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        raise CannotScan("install onnx (pip install 'bastion-ml[onnx]') to scan ONNX files") \
            from None
    try:
        model = onnx.load_model_from_string(bytes(data))
    except (DecodeError, ValueError, RuntimeError) as err:
        return [Issue("malformed-onnx", Severity.HIGH, "ONNX file does not parse",
                      f"The protobuf cannot be decoded: {err}.", "onnx")]
    issues: list[Issue] = []
    local = {f.domain for f in model.functions}
    seen: set[str] = set()
    for graph in _onnx_graphs(model.graph):
        for tensor in list(graph.initializer) + [s.values for s in graph.sparse_initializer]:
            location = next((e.value for e in tensor.external_data if e.key == "location"), None)
            if location is not None and _escapes(location) and location not in seen:
                seen.add(location)
                issues.append(Issue(
                    "external-data-traversal", Severity.HIGH,
                    "ONNX external data points outside the model folder",
                    f"Tensor {tensor.name!r} reads its data from {location!r}; loading it "
                    "reads (and may leak) a file outside the model's folder.", location,
                ))
        for node in graph.node:
            domain = node.domain
            if domain not in _ONNX_DOMAINS and domain not in local and domain not in seen:
                seen.add(domain)
                issues.append(Issue(
                    "custom-operator", Severity.MEDIUM, f"ONNX custom operator domain {domain}",
                    f"Operator {node.op_type!r} comes from domain {domain!r}; running the "
                    "model needs a native custom-op library, which is code you must trust.",
                    domain,
                ))
    return issues


def _onnx_graphs(graph: Any) -> Iterator[Any]:
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _escapes(location: str) -> bool:
    loc = location.replace("\\", "/")
    if loc.startswith("/") or (len(loc) > 1 and loc[1] == ":"):
        return True
    return posixpath.normpath(loc).startswith("..")


# -- SavedModel ------------------------------------------------------------------------

_TF_OPS = {
    "ReadFile": (Severity.HIGH, "reads any file the process can read"),
    "WriteFile": (Severity.CRITICAL, "writes any file the process can write"),
    "MatchingFiles": (Severity.MEDIUM, "lists files on the host"),
    "PyFunc": (Severity.CRITICAL, "calls back into Python code"),
    "PyFuncStateless": (Severity.CRITICAL, "calls back into Python code"),
    "EagerPyFunc": (Severity.CRITICAL, "calls back into Python code"),
    "WholeFileReader": (Severity.HIGH, "reads whole files from the host"),
    "WholeFileReaderV2": (Severity.HIGH, "reads whole files from the host"),
    "ImmutableConst": (Severity.MEDIUM, "memory-maps a file from the host"),
    "DebugIdentityV2": (Severity.MEDIUM, "writes debug dumps to a chosen folder"),
    "DeleteSessionTensor": (Severity.LOW, "manipulates session state"),
    "PrintV2": (Severity.LOW, "writes to a chosen output stream"),
}


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of one protobuf message."""
    pos, size = 0, len(buf)
    value: Any
    while pos < size:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > size:
                raise ValueError("length-delimited field past the end")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = None, pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _submessages(buf: bytes, field: int) -> Iterator[bytes]:
    for f, wire, value in _fields(buf):
        if f == field and wire == 2:
            yield value


def _savedmodel_ops(buf: bytes) -> Iterator[tuple[str, str]]:
    """(op, node name) for every node in every graph and library function."""
    for meta in _submessages(buf, 2):  # SavedModel.meta_graphs
        for graph in _submessages(meta, 2):  # MetaGraphDef.graph_def
            nodes = list(_submessages(graph, 1))  # GraphDef.node
            for library in _submessages(graph, 2):  # GraphDef.library
                for function in _submessages(library, 1):  # FunctionDefLibrary.function
                    nodes.extend(_submessages(function, 3))  # FunctionDef.node_def
            for node in nodes:
                name = op = ""
                for f, wire, value in _fields(node):
                    if wire == 2 and f == 1:
                        name = value.decode("utf-8", "replace")
                    elif wire == 2 and f == 2:
                        op = value.decode("utf-8", "replace")
                yield op, name


def scan_savedmodel(data: Any) -> list[Issue]:
    """File-system and Python-callback ops in a ``saved_model.pb``."""
    issues: list[Issue] = []
    seen: set[str] = set()
    try:
        for op, node in _savedmodel_ops(bytes(data)):
            if op in _TF_OPS and op not in seen:
                seen.add(op)
                severity, why = _TF_OPS[op]
                issues.append(Issue(
                    "tensorflow-op", severity, f"SavedModel uses the {op} op",
                    f"Node {node!r} runs {op}, which {why}, whenever the graph runs.", op,
                ))
    except ValueError as err:
        issues.append(Issue("malformed-savedmodel", Severity.HIGH, "SavedModel does not parse",
                            f"The protobuf is malformed: {err}.", "savedmodel"))
    return issues


# -- Keras -----------------------------------------------------------------------------

_KERAS_ROOTS = frozenset({"keras", "keras_core", "tf_keras", "builtins"})
_KERAS_TF = ("tensorflow.keras", "tensorflow.python.keras")


def scan_keras_config(config: Any) -> list[Issue]:
    """Lambda layers and custom objects anywhere in a Keras model config."""
    issues: list[Issue] = []
    seen: set[str] = set()
    for node in _dicts(config):
        cls = node.get("class_name")
        if not isinstance(cls, str):
            continue
        if cls in ("Lambda", "__lambda__", "TFOpLambda") and "lambda" not in seen:
            seen.add("lambda")
            inner = json.dumps(node.get("config", {}))[:100_000]
            code = '"function_type": "lambda"' in inner or "__lambda__" in inner
            issues.append(Issue(
                "keras-lambda", Severity.CRITICAL if code else Severity.HIGH,
                "Keras Lambda layer" + (" with marshalled bytecode" if code else ""),
                "A Lambda layer carries a Python function; Keras rebuilds it from marshalled "
                "bytecode or imports it by name when the model loads (outside safe_mode).",
                cls,
            ))
        module = node.get("module")
        if isinstance(module, str) and module and module.split(".")[0] not in _KERAS_ROOTS \
                and not module.startswith(_KERAS_TF) and module not in seen:
            seen.add(module)
            issues.append(Issue(
                "keras-custom-object", Severity.HIGH, f"Keras config imports {module}",
                f"Class {cls!r} is resolved from module {module!r}; loading imports it.",
                module,
            ))
    return issues


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def scan_keras_h5(data: Any) -> list[Issue]:
    """The model config in a Keras HDF5 file's root attributes (``data``: bytes or a path)."""
    try:
        import h5py
    except ImportError:
        raise CannotScan("install h5py (pip install 'bastion-ml[supplychain]') to scan HDF5") \
            from None
    try:
        with h5py.File(data if isinstance(data, str) else io.BytesIO(bytes(data)), "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as err:
        return [Issue("malformed-hdf5", Severity.MEDIUM, "HDF5 file does not open",
                      f"h5py cannot read it: {err}.", "hdf5")]
    if raw is None:
        return []
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [Issue("malformed-hdf5", Severity.MEDIUM, "Keras model_config is not JSON",
                      "The model_config attribute cannot be parsed.", "model_config")]
    return scan_keras_config(config)
