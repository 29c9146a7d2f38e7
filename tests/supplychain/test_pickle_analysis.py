"""The opcode analyser: benign ML pickles pass, every way of reaching a callable is seen.

Hostile pickles are assembled from opcodes in memory; their payloads would only call
``os.getcwd``/``builtins.print`` if ever run, and nothing here unpickles them.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from bastion.report.finding import Severity
from bastion.supplychain.pickle_analysis import analyse_pickle

# -- a tiny pickle assembler ----------------------------------------------------------


def text(value: str) -> bytes:
    raw = value.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def stack_glob(module: str, name: str) -> bytes:
    return text(module) + text(name) + b"\x93"


def call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def wrap(body: bytes, proto: int = 4) -> bytes:
    return b"\x80" + bytes([proto]) + body + b"."


class _Reduce:
    """Pickles as a call of ``func(*args)``; never instantiated during loading."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def rules(data: bytes, **kw: object) -> set[tuple[str, str]]:
    return {(i.rule, i.subject) for i in analyse_pickle(data, **kw).issues}  # type: ignore[arg-type]


# -- benign -----------------------------------------------------------------------------


def _benign_objects() -> dict[str, object]:
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    y = (x[:, 0] > 0.5).astype(int)
    return {
        "logreg": LogisticRegression().fit(x, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "tree": DecisionTreeClassifier(max_depth=3).fit(x, y),
        "array": np.arange(12, dtype=np.float32).reshape(3, 4),
        "object-array": np.array([1, "a", None], dtype=object),
        "ordered-dict": collections.OrderedDict(a=[1, 2.5, b"x"], b={1, 2}),
        "generator": rng,
        "nested": {"k": (1, 2), "s": frozenset({"a"}), "c": 3 + 4j, "big": 2**100},
    }


@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("name", list(_benign_objects()))
def test_benign_ml_pickles_raise_nothing(name: str, proto: int) -> None:
    data = pickle.dumps(_benign_objects()[name], protocol=proto)
    result = analyse_pickle(data)
    assert result.issues == []
    assert result.n_pickles == 1 and result.complete and result.end == len(data)


def test_torch_state_dict_pickle_is_clean() -> None:
    torch = pytest.importorskip("torch")
    import io
    import zipfile

    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buf)
    with zipfile.ZipFile(buf) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        result = analyse_pickle(archive.read(name))
    assert result.issues == []
    assert result.imports["torch._utils._rebuild_tensor_v2"] == "allowed"


# -- direct imports -------------------------------------------------------------------


@pytest.mark.parametrize("proto", range(6))
def test_reduce_of_os_function_is_critical_in_every_protocol(proto: int) -> None:
    data = pickle.dumps(_Reduce(os.getcwd), protocol=proto)
    issues = analyse_pickle(data).issues
    assert [i.rule for i in issues] == ["dangerous-global"]
    assert issues[0].severity is Severity.CRITICAL
    assert issues[0].subject in ("posix.getcwd", "nt.getcwd")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (wrap(call(glob("builtins", "print"), text("x"))), ("unknown-global", "builtins.print")),
        (wrap(call(glob("__builtin__", "eval"), text("1"))), ("dangerous-global", "builtins.eval")),
        (wrap(call(stack_glob("subprocess", "run"), text("x"))),
         ("dangerous-global", "subprocess.run")),
        (wrap(glob("torch", "load")), ("dangerous-global", "torch.load")),
        (wrap(b"o"), ("malformed-pickle", "no MARK for a mark-consuming opcode")),
        (wrap(b"(" + text("x") + b"i" + b"os\ngetcwd\n"), ("dangerous-global", "os.getcwd")),
        (wrap(b"(" + glob("os", "getcwd") + b"o"), ("dangerous-global", "os.getcwd")),
        (wrap(glob("os", "getcwd") + b")\x81"), ("dangerous-global", "os.getcwd")),
        (wrap(glob("os", "getcwd") + b")}\x92"), ("dangerous-global", "os.getcwd")),
        # a dotted name in protocol 4 walks attributes from an allowed root
        (wrap(stack_glob("collections", "OrderedDict.__init__.__globals__")),
         ("dangerous-global", "collections.OrderedDict.__init__.__globals__")),
        (wrap(glob("mylib.models", "Net")), ("unknown-global", "mylib.models.Net")),
    ],
)
def test_imports_are_judged(payload: bytes, expected: tuple[str, str]) -> None:
    assert expected in rules(payload)


def test_names_from_memo_are_resolved() -> None:
    body = text("posix") + b"\x94" + text("system") + b"\x94" + b"0" + b"h\x00h\x01\x93"
    assert ("dangerous-global", "posix.system") in rules(wrap(body))


def test_computed_stack_global_is_critical() -> None:
    body = call(glob("builtins", "str"), text("os")) + text("system") + b"\x93"
    issues = analyse_pickle(wrap(body)).issues
    assert ("dynamic-import", Severity.CRITICAL) in {(i.rule, i.severity) for i in issues}


# -- through higher-order callables ------------------------------------------------------


def test_getattr_on_imported_module_is_resolved() -> None:
    module = call(glob("builtins", "__import__"), text("os"))
    target = call(glob("builtins", "getattr"), module, text("getcwd"))
    found = rules(wrap(target + b")R"))
    assert ("dangerous-global", "os.getcwd") in found
    assert ("dangerous-global", "builtins.getattr") in found


def test_getattr_on_allowed_class_is_judged_again() -> None:
    target = call(glob("builtins", "getattr"), glob("collections", "OrderedDict"), text("fromkeys"))
    assert ("unknown-global", "collections.OrderedDict.fromkeys") in rules(wrap(target))


def test_functools_partial_call_is_followed() -> None:
    partial = call(glob("functools", "partial"), call(glob("importlib", "import_module"),
                                                       text("os")))
    assert ("dangerous-global", "os") in rules(wrap(partial + b")R"))


def test_attrgetter_chain_is_resolved() -> None:
    getter = call(glob("operator", "attrgetter"), text("path.os.getcwd"))
    target = call(getter, call(glob("importlib", "import_module"), text("shutil")))
    assert ("dangerous-global", "shutil.path.os.getcwd") in rules(wrap(target))


def test_methodcaller_is_resolved() -> None:
    caller = call(glob("_operator", "methodcaller"), text("getcwd"))
    target = call(caller, call(glob("importlib", "import_module"), text("os")))
    assert ("dangerous-global", "os.getcwd") in rules(wrap(target))


def test_nested_pickle_loads_is_analysed() -> None:
    inner = pickle.dumps(_Reduce(os.getcwd), protocol=2)
    outer = wrap(glob("pickle", "loads") + b"C" + bytes([len(inner)]) + inner + b"\x85R")
    issues = analyse_pickle(outer).issues
    nested = [i for i in issues if i.member.startswith("nested@")]
    assert {i.subject for i in nested} & {"posix.getcwd", "nt.getcwd"}
    assert ("dangerous-global", "pickle.loads") in {(i.rule, i.subject) for i in issues}


def test_nested_loads_of_computed_bytes_is_critical() -> None:
    outer = wrap(call(glob("pickle", "loads"), call(glob("builtins", "bytes"), b"K\x05")))
    assert "nested-pickle-opaque" in {r for r, _ in rules(outer)}


def test_call_of_a_call_result_is_reported() -> None:
    body = call(call(glob("collections", "OrderedDict")), text("x"))
    assert "call-computed" in {r for r, _ in rules(wrap(body))}


def test_build_on_a_global_overwrites_code() -> None:
    body = glob("collections", "OrderedDict") + b"N}" + text("x") + b"K\x01s\x86b"
    assert ("build-on-global", "collections.OrderedDict") in rules(wrap(body))


def test_ext_opcode_is_reported() -> None:
    assert ("extension-code", "ext7") in rules(wrap(b"\x82\x07)R", proto=2))


def test_codecs_encode_needs_latin1() -> None:
    ok = wrap(call(glob("_codecs", "encode"), text("abc"), text("latin1")), proto=2)
    bad = wrap(call(glob("_codecs", "encode"), text("abc"), text("rot13")), proto=2)
    assert rules(ok) == set()
    assert ("unexpected-arguments", "_codecs.encode") in rules(bad)


# -- streams, malformed input and limits -------------------------------------------------


def test_payload_in_second_pickle_is_found() -> None:
    data = pickle.dumps([1, 2]) + pickle.dumps(_Reduce(os.getcwd))
    result = analyse_pickle(data)
    assert result.n_pickles == 2
    assert "dangerous-global" in {i.rule for i in result.issues}


def test_trailing_garbage_is_low() -> None:
    issues = analyse_pickle(pickle.dumps([1]) + b"\xff\xfe").issues
    assert [(i.rule, i.severity) for i in issues] == [("trailing-data", Severity.LOW)]


def test_payload_before_a_break_is_still_reported() -> None:
    data = pickle.dumps(_Reduce(os.getcwd), protocol=2)[:-1] + b"\xff"
    found = {r for r, _ in rules(data)}
    assert {"dangerous-global", "malformed-pickle"} <= found


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x80\x04", b"\x80\x09N.", b"X\xff\xff\xff\x7f", b"h\x05.", b"t.", b"0",
     b"c\nos", b"\x8cabc", b"S'abc\n.", b"I12x\n.", b"R.", b"\x95\x01", b"\x8a\x05\x01.",
     # found by the atheris target: dict keys that are tuples holding lists
     b"](](t]\x85(ddt]\x85())))))')))))))))))))))t]3333333333333\x85\x8a"],
)
def test_malformed_streams_are_findings_never_crashes(data: bytes) -> None:
    result = analyse_pickle(data) if data else analyse_pickle(b"", start=0)
    if data:
        assert "malformed-pickle" in {i.rule for i in result.issues}
    else:
        assert result.n_pickles == 0


def test_opcode_budget_marks_incomplete() -> None:
    data = pickle.dumps(list(range(1000)), protocol=0)
    result = analyse_pickle(data, max_ops=50)
    assert not result.complete


def test_large_constants_are_skipped_not_kept() -> None:
    big = b"\x8e" + struct.pack("<Q", 20 << 20) + b"\0" * (20 << 20) + b"."
    result = analyse_pickle(b"\x80\x04" + big)
    assert result.issues == [] and result.end == len(big) + 2


def test_joblib_layout_steps_over_raw_arrays(tmp_path: object) -> None:
    import pathlib

    import joblib

    path = pathlib.Path(str(tmp_path)) / "m.joblib"
    joblib.dump({"w": np.arange(100.0), "o": np.array([1, "a"], dtype=object),
                 "u": np.array(["ab", "c"])}, path)
    data = path.read_bytes()
    result = analyse_pickle(data, joblib=True)
    assert result.issues == [] and result.end == len(data)
    plain = analyse_pickle(data)
    assert plain.issues, "read as a plain pickle, the raw array bytes break the stream"
