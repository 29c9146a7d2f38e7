"""Opcode-level pickle analysis: what would unpickling import and call, without unpickling.

The analyser walks the opcodes by hand (several times faster than ``pickletools.genops``) and
simulates the unpickler's stack, mark stack and memo with symbolic values, so that what
``GLOBAL``/``STACK_GLOBAL``/``INST``/``OBJ``/``REDUCE``/``BUILD``/``NEWOBJ(_EX)``/``EXT*``
finally reach is known even through ``getattr``, ``functools.partial``,
``operator.attrgetter``/``methodcaller`` and nested ``pickle.loads`` of constant bytes
(analysed in turn). Every imported name is judged by :mod:`bastion.supplychain.allowlist`.

Malformed or truncated streams become issues, never exceptions; work is bounded by an
opcode budget and a nesting depth, and large byte strings are skipped, not copied.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bastion.report.finding import Severity
from bastion.supplychain._issue import Issue
from bastion.supplychain.allowlist import judge, normalise

__all__ = ["PickleAnalysis", "analyse_pickle"]

_MAX_CONST = 1 << 24  # bytes/str constants kept for nested analysis; larger are skipped
_MAX_ITEMS = 4096  # container items remembered per list/dict
_MAX_DEPTH = 4  # nested pickle.loads levels followed
_MAX_OPS = 50_000_000  # opcodes per top-level call
_JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_TEXT_OPS = frozenset((0x49, 0x4C, 0x46, 0x53, 0x56, 0x50))
_DTYPE_CODE = re.compile(r"[<>|=]?([A-Za-z?])(\d*)")

_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_F64 = struct.Struct(">d").unpack_from


class _Ref:
    """An imported object, or an attribute path reached from one (``os.system``)."""

    __slots__ = ("name", "plain")

    def __init__(self, name: str) -> None:
        self.name = name
        # plain: calling it just builds an object (not getattr, partial, loads...)
        self.plain = name not in _SPECIAL and name not in _LOADS


class _Obj:
    """The result of calling ``of`` with ``args``; ``state`` is what BUILD gave it."""

    __slots__ = ("args", "of", "state")

    def __init__(self, of: str, args: Any = None) -> None:
        self.of = of
        self.args = args
        self.state: Any = None


class _Partial:
    __slots__ = ("args", "func")

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func = func
        self.args = args


class _AttrGetter:
    __slots__ = ("names",)

    def __init__(self, names: tuple[Any, ...]) -> None:
        self.names = names


class _MethodCaller:
    __slots__ = ("args", "name")

    def __init__(self, name: Any, args: tuple[Any, ...]) -> None:
        self.name = name
        self.args = args


class _Opaque:
    """A value the analyser does not track (large constants, sets, buffers)."""

    __slots__ = ()


_OPAQUE = _Opaque()
_LOADS = frozenset({
    "pickle.loads", "pickle._loads", "_pickle.loads", "cPickle.loads", "dill.loads",
    "cloudpickle.loads", "torch.storage._load_from_bytes",
})


class _Malformed(Exception):
    """The stream cannot be unpickled past this point."""


class _Budget(Exception):
    """The opcode budget ran out."""


@dataclass
class PickleAnalysis:
    """What one pickle stream (possibly several pickles back to back) would do.

    ``imports`` maps every name the stream imports or reaches to its verdict kind
    (allowed/dangerous/unknown); ``complete`` is False when the opcode budget ran out
    before the end, which means the stream was *not* fully looked at.
    """

    issues: list[Issue] = field(default_factory=list)
    imports: dict[str, str] = field(default_factory=dict)
    n_pickles: int = 0
    end: int = 0
    complete: bool = True


def analyse_pickle(
    data: Any, *, start: int = 0, max_pickles: int | None = None, joblib: bool = False,
    max_ops: int = _MAX_OPS,
) -> PickleAnalysis:
    """Analyse the pickle(s) in ``data`` (bytes or mmap) from ``start``.

    Pickles are read back to back until the end of ``data`` or ``max_pickles``; bytes
    after the first pickle that do not form a pickle are a low-severity issue.
    ``joblib`` follows joblib's layout, where raw array bytes sit between opcodes.
    """
    result = PickleAnalysis(end=start)
    _Machine(data, result, joblib=joblib, max_ops=max_ops, depth=0).run_all(start, max_pickles)
    return result


class _Machine:
    def __init__(
        self, data: Any, result: PickleAnalysis, *, joblib: bool, max_ops: int, depth: int
    ) -> None:
        self.data = data
        self.size = len(data)
        self.result = result
        self.joblib = joblib
        self.ops_left = max_ops
        self.depth = depth
        self.seen: set[tuple[str, str]] = set()

    # -- reporting ------------------------------------------------------------------
    def issue(
        self, rule: str, severity: Severity, title: str, detail: str, subject: str,
        offset: int,
    ) -> None:
        key = (rule, subject)
        if key in self.seen:
            return
        self.seen.add(key)
        self.result.issues.append(Issue(rule, severity, title, detail, subject, "", offset))

    def ref(self, name: str, offset: int, how: str = "imports") -> _Ref:
        """A reference to ``name``, judged against the allowlist the first time it is seen."""
        known = self.result.imports.get(name)
        if known is None:
            verdict = judge(name)
            self.result.imports[name] = verdict.kind
            if verdict.kind == "dangerous":
                self.issue(
                    "dangerous-global", Severity.CRITICAL, f"Pickle {how} {name}",
                    f"Unpickling {how} {name}, which {verdict.reason}; loading this file "
                    "can run code on the loading machine.", name, offset,
                )
            elif verdict.kind == "unknown":
                self.issue(
                    "unknown-global", Severity.HIGH, f"Pickle {how} {name} (not allowlisted)",
                    f"Unpickling {how} {name}, which is {verdict.reason}; importing and "
                    "calling it may run code.", name, offset,
                )
        return _Ref(name)

    # -- driving ---------------------------------------------------------------------
    def run_all(self, start: int, max_pickles: int | None) -> None:
        pos = start
        result = self.result
        while pos < self.size and (max_pickles is None or result.n_pickles < max_pickles):
            first = result.n_pickles == 0
            try:
                pos = self.run(pos)
            except _Malformed as err:
                where = err.args[1]
                if first or max_pickles is not None:
                    self.issue(
                        "malformed-pickle", Severity.HIGH, "Malformed or truncated pickle",
                        f"The pickle stream breaks at byte {where}: {err.args[0]}. Loaders "
                        "run every opcode before the break, and a scanner that stops "
                        "early can be fooled.", str(err.args[0]), where,
                    )
                else:
                    self.issue(
                        "trailing-data", Severity.LOW, "Data after the pickle",
                        f"{self.size - pos} bytes after the last complete pickle are not "
                        f"a pickle ({err.args[0]} at byte {where}).", "trailing", pos,
                    )
                result.end = self.size
                return
            except _Budget:
                result.complete = False
                result.end = pos
                return
            result.n_pickles += 1
            result.end = pos

    def run(self, pos: int) -> int:
        """Simulate one pickle from ``pos``; return the offset after its STOP."""
        data = self.data
        size = self.size
        stack: list[Any] = []
        push = stack.append  # rebound wherever ``stack`` is
        marks: list[list[Any]] = []
        memo: dict[int, Any] = {}
        ref = self.ref
        call = self.call
        start = pos
        skipped = 0  # bytes of large constants stepped over: they cost no work
        limit = min(size, pos + self.ops_left)
        op_at = pos

        # Each opcode is at least one byte, so walking at most ``ops_left`` bytes (large
        # constants excluded) bounds the work. Opcodes are split at 0x80 and each half is
        # ordered by how often they occur in scikit-learn and torch pickles (a late branch
        # costs every comparison before it). Opcodes whose result the pickler memoizes fall
        # through to the end of the loop, which takes a MEMOIZE/BINPUT right after them in
        # the same step (a third of all opcodes); every other branch ends with ``continue``.
        try:
            while True:
                if pos >= limit:
                    if pos >= size:
                        raise _Malformed("stream ends without STOP", pos)
                    raise _Budget
                op_at = pos
                op = data[pos]
                pos += 1
                if op >= 0x80:  # protocol 2+ opcodes, then the ASCII ones of protocols 0-1
                    if op == 0x8C:  # SHORT_BINUNICODE
                        n = data[pos]
                        pos += n + 1
                        if pos > size:
                            raise _Malformed("truncated argument", op_at)
                        value = data[pos - n:pos].decode("utf-8", "surrogatepass")
                        push(value)
                    elif op == 0x87 or op == 0x86:  # TUPLE3, TUPLE2
                        n = op - 0x84
                        if len(stack) < n:
                            raise _Malformed("TUPLE on a short stack", op_at)
                        value = tuple(stack[-n:])
                        del stack[-n:]
                        push(value)
                    elif op == 0x88 or op == 0x89:  # NEWTRUE, NEWFALSE
                        push(op == 0x88)
                        continue
                    elif op == 0x85:  # TUPLE1
                        if not stack:
                            raise _Malformed("TUPLE1 on an empty stack", op_at)
                        stack[-1] = value = (stack[-1],)
                    elif op == 0x93:  # STACK_GLOBAL
                        if len(stack) < 2:
                            raise _Malformed("STACK_GLOBAL on a short stack", op_at)
                        name_v = stack.pop()
                        value = self.stack_global(stack.pop(), name_v, op_at)
                        push(value)
                    elif op == 0x94:  # MEMOIZE (one not taken with the opcode before it)
                        if not stack:
                            raise _Malformed("MEMOIZE on an empty stack", op_at)
                        memo[len(memo)] = stack[-1]
                        continue
                    elif op == 0x81 or op == 0x92:  # NEWOBJ, NEWOBJ_EX
                        need_n = 2 if op == 0x81 else 3
                        if len(stack) < need_n:
                            raise _Malformed("NEWOBJ on a short stack", op_at)
                        kwargs = stack.pop() if op == 0x92 else None
                        args = stack.pop()
                        stack[-1] = value = call(stack[-1], args, kwargs, op_at)
                    elif op == 0x80:  # PROTO
                        if data[pos] > 5:
                            raise _Malformed(f"unsupported protocol {data[pos]}", op_at)
                        pos += 1
                        continue
                    elif op == 0x95:  # FRAME
                        _need(size, pos, 8, op_at)
                        pos += 8
                        continue
                    elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
                        width = 1 if op == 0x8A else 4
                        _need(size, pos, width, op_at)
                        n = data[pos] if width == 1 else _U32(data, pos)[0]
                        pos += width
                        _need(size, pos, n, op_at)
                        value = int.from_bytes(data[pos:pos + n], "little", signed=True) \
                            if n <= 64 else _OPAQUE
                        push(value)
                        pos += n
                        continue
                    elif op == 0x8D or op == 0x8E or op == 0x96:  # *8 and BYTEARRAY8
                        value, n, pos = _long_const(data, size, pos, op, op_at)
                        push(value)
                        skipped += n  # large constants are stepped over: they cost no work
                        limit = min(size, limit + n)
                    elif op == 0x8F:  # EMPTY_SET
                        value = _OPAQUE
                        push(value)
                    elif op == 0x90:  # ADDITEMS
                        if not marks:
                            raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                        items, stack = stack, marks.pop()
                        push = stack.append
                        if not stack:
                            raise _Malformed("ADDITEMS without a target", op_at)
                        continue
                    elif op == 0x91:  # FROZENSET
                        if not marks:
                            raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                        items, stack = stack, marks.pop()
                        push = stack.append
                        value = _OPAQUE
                        push(value)
                    elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                        width = {0x82: 1, 0x83: 2, 0x84: 4}[op]
                        _need(size, pos, width, op_at)
                        code = int.from_bytes(data[pos:pos + width], "little")
                        pos += width
                        self.issue(
                            "extension-code", Severity.HIGH, f"Pickle uses extension code {code}",
                            "EXT opcodes import whatever the loading process registered in "
                            "copyreg for this code, so the target cannot be known from the file.",
                            f"ext{code}", op_at,
                        )
                        value = _Ref(f"copyreg.extension[{code}]")
                        push(value)
                    elif op == 0x97:  # NEXT_BUFFER
                        value = _OPAQUE
                        push(value)
                    elif op == 0x98:  # READONLY_BUFFER
                        if not stack:
                            raise _Malformed("READONLY_BUFFER on an empty stack", op_at)
                        continue
                    else:
                        raise _Malformed(f"unknown opcode 0x{op:02x}", op_at)
                elif op == 0x4B:  # BININT1
                    push(data[pos])
                    pos += 1
                    continue
                elif op == 0x68:  # BINGET
                    idx = data[pos]
                    pos += 1
                    if idx not in memo:
                        raise _Malformed(f"memo key {idx} was never stored", op_at)
                    push(memo[idx])
                    continue
                elif op == 0x4E:  # NONE
                    push(None)
                    continue
                elif op == 0x28:  # MARK
                    marks.append(stack)
                    stack = []
                    push = stack.append
                    continue
                elif op == 0x62:  # BUILD
                    if len(stack) < 2:
                        raise _Malformed("BUILD on a short stack", op_at)
                    state = stack.pop()
                    after = self.build(stack[-1], state, op_at, pos)
                    if after != pos:  # joblib array bytes: stepped over, cost no work
                        skipped += after - pos
                        limit = min(size, limit + after - pos)
                        pos = after
                    continue
                elif op == 0x52:  # REDUCE
                    if len(stack) < 2:
                        raise _Malformed("REDUCE on a short stack", op_at)
                    args = stack.pop()
                    func = stack[-1]
                    if type(func) is _Ref and func.plain and type(args) is tuple:
                        value = _Obj(func.name, args)  # the common case, without call()
                    else:
                        value = call(func, args, None, op_at)
                    stack[-1] = value
                elif op == 0x74:  # TUPLE
                    if not marks:
                        raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                    value = tuple(stack)
                    stack = marks.pop()
                    push = stack.append
                    push(value)
                elif op == 0x4A:  # BININT
                    push(_I32(data, pos)[0])
                    pos += 4
                    continue
                elif op == 0x43 or op == 0x55:  # SHORT_BINBYTES, SHORT_BINSTRING
                    n = data[pos]
                    pos += n + 1
                    if pos > size:
                        raise _Malformed("truncated argument", op_at)
                    value = data[pos - n:pos]  # bytes, from bytes and mmap alike
                    if op == 0x55:
                        value = value.decode("latin-1")
                    push(value)
                elif op == 0x58:  # BINUNICODE (every string of a protocol-2 torch pickle)
                    n = _U32(data, pos)[0]
                    pos += 4
                    value = _const(data, size, pos, n, True, op_at)
                    push(value)
                    pos += n
                    skipped += n
                    limit = min(size, limit + n)
                elif op == 0x42 or op == 0x54:  # BINBYTES, BINSTRING
                    value, n, pos = _long_const(data, size, pos, op, op_at)
                    push(value)
                    skipped += n  # large constants are stepped over: they cost no work
                    limit = min(size, limit + n)
                elif op == 0x51:  # BINPERSID
                    if not stack:
                        raise _Malformed("BINPERSID on an empty stack", op_at)
                    stack[-1] = value = _persistent(stack[-1])
                elif op == 0x71:  # BINPUT
                    if not stack:
                        raise _Malformed("PUT on an empty stack", op_at)
                    memo[data[pos]] = stack[-1]
                    pos += 1
                    continue
                elif op == 0x47:  # BINFLOAT
                    push(_F64(data, pos)[0])
                    pos += 8
                    continue
                elif op == 0x7D:  # EMPTY_DICT
                    value = {}
                    push(value)
                elif op == 0x75:  # SETITEMS
                    if not marks:
                        raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                    items, stack = stack, marks.pop()
                    push = stack.append
                    if not stack or len(items) % 2:
                        raise _Malformed("SETITEMS without a target or with odd items", op_at)
                    self.setitems(stack[-1], items)
                    continue
                elif op == 0x29:  # EMPTY_TUPLE
                    value = ()
                    push(value)
                elif op == 0x5D:  # EMPTY_LIST
                    value = []
                    push(value)
                elif op == 0x65:  # APPENDS
                    if not marks:
                        raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                    items, stack = stack, marks.pop()
                    push = stack.append
                    if not stack:
                        raise _Malformed("APPENDS without a target", op_at)
                    target = stack[-1]
                    if type(target) is list and len(target) < _MAX_ITEMS:
                        target.extend(items[: _MAX_ITEMS - len(target)])
                    continue
                elif op == 0x6A:  # LONG_BINGET
                    idx = _U32(data, pos)[0]
                    pos += 4
                    if idx not in memo:
                        raise _Malformed(f"memo key {idx} was never stored", op_at)
                    push(memo[idx])
                    continue
                elif op == 0x72:  # LONG_BINPUT
                    if not stack:
                        raise _Malformed("PUT on an empty stack", op_at)
                    memo[_U32(data, pos)[0]] = stack[-1]
                    pos += 4
                    continue
                elif op == 0x4D:  # BININT2
                    push(_U16(data, pos)[0])
                    pos += 2
                    continue
                elif op == 0x63 or op == 0x69:  # GLOBAL, INST
                    module = _line(data, pos, op_at)
                    pos += len(module) + 1
                    name = _line(data, pos, op_at)
                    pos += len(name) + 1
                    value = ref(normalise(_text(module), _text(name)), op_at)
                    if op == 0x69:
                        if not marks:
                            raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                        items, stack = stack, marks.pop()
                        push = stack.append
                        value = call(value, tuple(items), None, op_at)
                    push(value)
                elif op == 0x2E:  # STOP
                    if not stack:
                        raise _Malformed("STOP on an empty stack", op_at)
                    self.ops_left -= pos - start - skipped
                    return pos
                elif op == 0x73:  # SETITEM
                    if len(stack) < 3:
                        raise _Malformed("SETITEM on a short stack", op_at)
                    value = stack.pop()
                    key = stack.pop()
                    self.setitems(stack[-1], [key, value])
                    continue
                elif op == 0x61:  # APPEND
                    if len(stack) < 2:
                        raise _Malformed("APPEND on a short stack", op_at)
                    value = stack.pop()
                    target = stack[-1]
                    if type(target) is list and len(target) < _MAX_ITEMS:
                        target.append(value)
                    continue
                elif op == 0x6F:  # OBJ
                    if not marks:
                        raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                    items, stack = stack, marks.pop()
                    push = stack.append
                    if not items:
                        raise _Malformed("OBJ without a class", op_at)
                    value = call(items[0], tuple(items[1:]), None, op_at)
                    push(value)
                elif op == 0x30:  # POP
                    if stack:
                        stack.pop()
                    else:
                        if not marks:
                            raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                        items, stack = stack, marks.pop()
                        push = stack.append
                    continue
                elif op == 0x31:  # POP_MARK
                    if not marks:
                        raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                    items, stack = stack, marks.pop()
                    push = stack.append
                    continue
                elif op == 0x32:  # DUP
                    if not stack:
                        raise _Malformed("DUP on an empty stack", op_at)
                    push(stack[-1])
                    continue
                elif op == 0x6C:  # LIST
                    if not marks:
                        raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                    value = stack[:_MAX_ITEMS]
                    stack = marks.pop()
                    push = stack.append
                    push(value)
                elif op == 0x64:  # DICT
                    if not marks:
                        raise _Malformed("no MARK for a mark-consuming opcode", op_at)
                    items, stack = stack, marks.pop()
                    push = stack.append
                    if len(items) % 2:
                        raise _Malformed("DICT with an odd number of items", op_at)
                    value = {}
                    self.setitems(value, items)
                    push(value)
                elif op == 0x70 or op == 0x67:  # PUT, GET (text index)
                    text = _line(data, pos, op_at)
                    pos += len(text) + 1
                    try:
                        idx = int(text)
                    except ValueError:
                        raise _Malformed("non-numeric memo index", op_at) from None
                    if op == 0x70:
                        if not stack:
                            raise _Malformed("PUT on an empty stack", op_at)
                        memo[idx] = stack[-1]
                    elif idx in memo:
                        push(memo[idx])
                    else:
                        raise _Malformed(f"memo key {idx} was never stored", op_at)
                    continue
                elif op in _TEXT_OPS:  # INT, LONG, FLOAT, STRING, UNICODE, PERSID
                    text = _line(data, pos, op_at)
                    pos += len(text) + 1
                    if op == 0x50:
                        push(_Obj("persistent_load"))
                    else:
                        push(_text_const(op, text, op_at))
                    continue
                else:
                    raise _Malformed(f"unknown opcode 0x{op:02x}", op_at)
                # ``value`` was just pushed: take the MEMOIZE or BINPUT that follows it
                if pos < limit:
                    nxt = data[pos]
                    if nxt == 0x94:
                        memo[len(memo)] = value
                        pos += 1
                    elif nxt == 0x71:
                        op_at = pos
                        memo[data[pos + 1]] = value
                        pos += 2
        except (IndexError, struct.error):
            raise _Malformed("truncated stream", op_at) from None
        except UnicodeDecodeError:
            raise _Malformed("string argument is not valid UTF-8", op_at) from None

    # -- semantics -------------------------------------------------------------------
    def setitems(self, target: Any, items: list[Any]) -> None:
        if type(target) is not dict or len(target) >= _MAX_ITEMS:
            return
        room = 2 * (_MAX_ITEMS - len(target))
        if len(items) > room:
            items = items[:room]
        try:  # callers checked that the items pair up
            target.update(zip(items[::2], items[1::2]))  # noqa: B905
        except TypeError:  # an unhashable key (a list, or a tuple holding one): skip it
            for i in range(0, len(items), 2):
                with contextlib.suppress(TypeError):
                    target[items[i]] = items[i + 1]

    def stack_global(self, module: Any, name: Any, offset: int) -> _Ref:
        if isinstance(module, str) and isinstance(name, str):
            return self.ref(normalise(module, name), offset)
        self.issue(
            "dynamic-import", Severity.CRITICAL, "Pickle imports a computed name",
            "STACK_GLOBAL takes its module or name from a computed value, so what it "
            "imports is chosen at load time.", "STACK_GLOBAL", offset,
        )
        return _Ref("<computed>")

    def attr(self, obj: Any, name: Any, offset: int, how: str) -> Any:
        """``getattr(obj, name)`` as a reference whose full name is judged again."""
        if not isinstance(name, str):
            self.issue(
                "dynamic-attribute", Severity.CRITICAL, "Pickle reaches a computed attribute",
                f"{how} is given a computed attribute name.", how, offset,
            )
            return _OPAQUE
        if isinstance(obj, _Ref):
            base = obj.name
        elif isinstance(obj, _Obj):
            base = obj.of
        elif isinstance(obj, str | bytes | int | float | tuple | list | dict):
            base = f"builtins.{type(obj).__name__}"
        else:
            base = "<computed>"
        return self.ref(f"{base}.{name}", offset, f"reaches (via {how})")

    def call(self, func: Any, args: Any, kwargs: Any, offset: int) -> Any:
        """What calling ``func(*args)`` yields; resolves higher-order callables."""
        if not isinstance(args, tuple):
            args = (_OPAQUE,)
        if isinstance(func, _Ref):
            special = _SPECIAL.get(func.name)
            if special is not None:
                return special(self, args, offset)
            if func.name in _LOADS:
                return self.nested(args, offset, func.name)
            return _Obj(func.name, args)
        if isinstance(func, _Partial):
            return self.call(func.func, func.args + args, kwargs, offset)
        if isinstance(func, _AttrGetter) and args:
            result: Any = _OPAQUE
            for dotted in func.names:
                result = args[0]
                for part in (dotted.split(".") if isinstance(dotted, str) else [dotted]):
                    result = self.attr(result, part, offset, "operator.attrgetter")
            return result
        if isinstance(func, _MethodCaller) and args:
            method = self.attr(args[0], func.name, offset, "operator.methodcaller")
            return self.call(method, func.args, None, offset)
        self.issue(
            "call-computed", Severity.HIGH, "Pickle calls a computed object",
            f"A REDUCE/NEWOBJ calls the result of another call ({_describe(func)}), which "
            "is not a known safe constructor.", _describe(func), offset,
        )
        return _OPAQUE

    def nested(self, args: tuple[Any, ...], offset: int, how: str) -> Any:
        """Analyse constant bytes handed to a nested ``loads`` like a pickle of their own."""
        payload = args[0] if args else None
        if not isinstance(payload, bytes | str) or self.depth >= _MAX_DEPTH:
            self.issue(
                "nested-pickle-opaque", Severity.CRITICAL, f"Pickle calls {how} on data "
                "that cannot be followed", f"{how} unpickles a value that is computed, too "
                "large or nested too deep to analyse.", how, offset,
            )
            return _OPAQUE
        raw = payload.encode("latin-1", "replace") if isinstance(payload, str) else payload
        inner = PickleAnalysis()
        machine = _Machine(
            raw, inner, joblib=False, max_ops=self.ops_left, depth=self.depth + 1
        )
        if how == "torch.storage._load_from_bytes" and raw[:1] != b"\x80":
            machine.issue(
                "nested-pickle-opaque", Severity.HIGH, "Legacy storage bytes are not a pickle",
                "torch.storage._load_from_bytes is given bytes that are not a pickle stream.",
                how, 0,
            )
        else:
            machine.run_all(0, 5 if how == "torch.storage._load_from_bytes" else None)
        for item in inner.issues:
            self.result.issues.append(
                Issue(item.rule, item.severity, item.title, f"{item.detail} (inside bytes "
                      f"unpickled by {how})", item.subject, f"nested@{offset}", item.offset)
            )
        for name, kind in inner.imports.items():
            self.result.imports.setdefault(name, kind)
        if not inner.complete:
            self.result.complete = False
        return _OPAQUE

    def build(self, inst: Any, state: Any, offset: int, pos: int) -> int:
        """BUILD: restore state on ``inst``; returns where reading continues."""
        if isinstance(inst, _Ref):
            self.issue(
                "build-on-global", Severity.CRITICAL, f"Pickle overwrites attributes of "
                f"{inst.name}", "BUILD on an imported class or module sets its attributes, "
                "changing code every later user of it runs.", inst.name, offset,
            )
            return pos
        if isinstance(inst, _Obj):
            inst.state = state
            if self.joblib and inst.of == _JOBLIB_WRAPPER:
                return self.skip_joblib_array(state, offset, pos)
        return pos

    def skip_joblib_array(self, state: Any, offset: int, pos: int) -> int:
        """Step over the array bytes joblib writes right after a NumpyArrayWrapper."""
        layout = _joblib_layout(state)
        if layout is None:
            raise _Malformed("joblib array wrapper without a readable shape and dtype", offset)
        nbytes, has_object, aligned = layout
        if has_object:
            inner = PickleAnalysis()
            machine = _Machine(
                self.data, inner, joblib=True, max_ops=self.ops_left, depth=self.depth
            )
            machine.seen = self.seen
            machine.run_all(pos, 1)
            self.result.issues.extend(inner.issues)
            for name, kind in inner.imports.items():
                self.result.imports.setdefault(name, kind)
            if inner.n_pickles != 1:
                raise _Malformed("joblib object array without a complete pickle", pos)
            return inner.end
        if aligned:
            if pos >= self.size:
                raise _Malformed("joblib array padding missing", pos)
            pos += 1 + self.data[pos]
        if pos + nbytes > self.size:
            raise _Malformed("joblib array data truncated", pos)
        return pos + nbytes


def _special_getattr(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    if len(args) < 2:
        return _OPAQUE
    return m.attr(args[0], args[1], offset, "getattr")


def _special_import(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    if args and isinstance(args[0], str):
        return m.ref(args[0], offset, "imports (via a call)")
    m.issue(
        "dynamic-import", Severity.CRITICAL, "Pickle imports a computed module name",
        "An import function is called with a computed module name.", "import", offset,
    )
    return _OPAQUE


def _special_resolve_name(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    if args and isinstance(args[0], str):
        return m.ref(args[0].replace(":", "."), offset, "resolves (via pkgutil.resolve_name)")
    return _special_import(m, (), offset)


def _special_partial(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    return _Partial(args[0], args[1:]) if args else _OPAQUE


def _special_attrgetter(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    return _AttrGetter(args)


def _special_methodcaller(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    return _MethodCaller(args[0], args[1:]) if args else _OPAQUE


def _special_apply(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    if not args:
        return _OPAQUE
    inner = args[1] if len(args) > 1 and isinstance(args[1], tuple) else ()
    return m.call(args[0], inner, None, offset)


def _special_call(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    return m.call(args[0], args[1:], None, offset) if args else _OPAQUE


def _special_encode(m: _Machine, args: tuple[Any, ...], offset: int) -> Any:
    codec = args[1] if len(args) > 1 else "utf-8"
    if not (args and isinstance(args[0], str) and codec in ("latin1", "latin-1")):
        m.issue(
            "unexpected-arguments", Severity.HIGH, "_codecs.encode with an unusual codec",
            "Pickles encode bytes as _codecs.encode(text, 'latin1'); any other codec or "
            "argument can import codec modules.", "_codecs.encode", offset,
        )
        return _OPAQUE
    return args[0].encode("latin-1", "replace")


_Special = Callable[[_Machine, tuple[Any, ...], int], Any]
_SPECIAL: dict[str, _Special] = {
    "builtins.getattr": _special_getattr,
    "builtins.__import__": _special_import,
    "importlib.import_module": _special_import,
    "importlib.__import__": _special_import,
    "pkgutil.resolve_name": _special_resolve_name,
    "functools.partial": _special_partial,
    "_functools.partial": _special_partial,
    "operator.attrgetter": _special_attrgetter,
    "_operator.attrgetter": _special_attrgetter,
    "operator.methodcaller": _special_methodcaller,
    "_operator.methodcaller": _special_methodcaller,
    "operator.call": _special_call,
    "_operator.call": _special_call,
    "builtins.apply": _special_apply,
    "_codecs.encode": _special_encode,
}


def _long_const(data: Any, size: int, pos: int, op: int, op_at: int) -> tuple[Any, int, int]:
    """(value, length, offset after it) of a length-prefixed constant at ``pos``:
    BINUNICODE, BINUNICODE8, BINBYTES, BINBYTES8, BINSTRING or BYTEARRAY8."""
    text = op == 0x58 or op == 0x8D
    width = 4 if op == 0x58 or op == 0x42 or op == 0x54 else 8
    if not text:
        _need(size, pos, width, op_at)
    n = _U32(data, pos)[0] if width == 4 else _U64(data, pos)[0]
    pos += width
    value = _const(data, size, pos, n, text, op_at)
    return (_latin1(value) if op == 0x54 else value), n, pos + n


def _need(size: int, pos: int, n: int, op_at: int) -> None:
    if pos + n > size:
        raise _Malformed("truncated argument", op_at)


def _line(data: Any, pos: int, op_at: int) -> bytes:
    end = data.find(b"\n", pos)
    if end < 0:
        raise _Malformed("unterminated text argument", op_at)
    return bytes(data[pos:end])


def _const(data: Any, size: int, pos: int, n: int, text: bool, op_at: int) -> Any:
    """A bytes/str constant of ``n`` bytes at ``pos``; huge ones are skipped, not copied."""
    _need(size, pos, n, op_at)
    if n > _MAX_CONST:
        return _OPAQUE
    raw = bytes(data[pos:pos + n])
    return raw.decode("utf-8", "surrogatepass") if text else raw


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _latin1(value: Any) -> Any:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _text_const(op: int, text: bytes, offset: int) -> Any:
    """The value of a protocol-0 text opcode (INT, LONG, FLOAT, STRING, UNICODE)."""
    try:
        if op == 0x49:
            return {b"00": False, b"01": True}.get(text) if text in (b"00", b"01") \
                else int(text)
        if op == 0x4C:
            return int(text.rstrip(b"L"))
        if op == 0x46:
            return float(text)
        if op == 0x56:
            return text.decode("raw-unicode-escape")
        if len(text) < 2 or text[:1] not in (b"'", b'"') or text[-1:] != text[:1]:
            raise _Malformed("STRING argument is not quoted", offset)
        return codecs.escape_decode(text[1:-1])[0].decode("latin-1")
    except (ValueError, UnicodeDecodeError):
        raise _Malformed("bad text argument", offset) from None


def _persistent(pid: Any) -> Any:
    """What ``persistent_load`` gives back: legacy torch files name module classes this way."""
    if type(pid) is tuple and len(pid) > 1 and pid[0] == "module" and isinstance(pid[1], _Ref):
        return pid[1]
    return _Obj("persistent_load")


def _describe(value: Any) -> str:
    if isinstance(value, _Obj):
        return f"result of {value.of}"
    if isinstance(value, _Ref):
        return value.name
    return type(value).__name__


def _joblib_layout(state: Any) -> tuple[int, bool, bool] | None:
    """(data bytes, holds objects, has an alignment byte) for a NumpyArrayWrapper's state."""
    if not isinstance(state, dict):
        return None
    shape, dtype = state.get("shape"), state.get("dtype")
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        return None
    if not isinstance(dtype, _Obj) or dtype.of != "numpy.dtype" or not dtype.args:
        return None
    code = dtype.args[0]
    if not isinstance(code, str) or not code:
        return None
    if code[0] == "O":
        return 0, True, False
    match = _DTYPE_CODE.fullmatch(code)
    if match is None:
        return None
    letter, digits = match.groups()
    if digits:
        itemsize = int(digits) * (4 if letter == "U" else 1)
    elif letter in "?bB":
        itemsize = 1
    else:
        itemsize = None
    if isinstance(dtype.state, tuple) and len(dtype.state) > 5 and type(dtype.state[5]) is int \
            and dtype.state[5] > 0:
        itemsize = dtype.state[5]
    if itemsize is None:
        return None
    count = 1
    for d in shape:
        count *= d
    return count * itemsize, False, "numpy_array_alignment_bytes" in state
