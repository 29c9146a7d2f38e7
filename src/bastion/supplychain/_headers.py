"""Header checks for formats that hold data only: npy, safetensors, GGUF.

These formats cannot run code by design; what goes wrong is a header that lies (offsets
outside the file, overlapping tensors, absurd counts) and crashes or exhausts a loader,
a ``.npy`` that smuggles a pickle as an object array, or a GGUF chat template that
runs code in the Jinja sandbox of some runtimes. Only headers are read, never payloads.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
import struct
from typing import Any

from bastion.report.finding import Severity
from bastion.supplychain._issue import Issue
from bastion.supplychain.pickle_analysis import analyse_pickle

__all__ = [
    "CannotScan", "check_template", "scan_gguf", "scan_npy", "scan_safetensors",
    "scan_tokenizer_config",
]

_MAX_HEADER = 100 << 20
_ST_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}


class CannotScan(Exception):
    """The file could not be looked at (a missing optional library, an I/O error)."""


def _bad(rule: str, title: str, detail: str, severity: Severity = Severity.HIGH) -> Issue:
    return Issue(rule, severity, title, detail, rule)


def scan_npy(data: Any) -> list[Issue]:
    """A ``.npy``: header sanity, and the pickle behind an object array analysed."""
    if len(data) < 10:
        return [_bad("malformed-npy", "Truncated .npy header", "The file ends inside its header.")]
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", data, 8)
        start = 10
    else:
        (hlen,) = struct.unpack_from("<I", data, 8)
        start = 12
    if hlen > _MAX_HEADER or start + hlen > len(data):
        return [_bad("malformed-npy", "Bad .npy header length",
                     f"The header claims {hlen} bytes, more than the file holds.")]
    try:
        header = ast.literal_eval(bytes(data[start:start + hlen]).decode("latin-1"))
        descr, shape = header["descr"], tuple(header["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        return [_bad("malformed-npy", "Unreadable .npy header",
                     "The header is not the dict literal numpy writes.")]
    offset = start + hlen
    if "O" in str(descr):
        issues = [Issue(
            "object-array", Severity.INFO, "Object array: loading needs allow_pickle=True",
            "This array holds Python objects stored as a pickle; numpy refuses it unless "
            "allow_pickle=True. The pickle was analysed.", "npy",
        )]
        result = analyse_pickle(data, start=offset, max_pickles=1)
        return issues + result.issues
    try:
        itemsize = _npy_itemsize(str(descr))
        count = math.prod(int(d) for d in shape)
    except (ValueError, TypeError):
        return [_bad("malformed-npy", "Unreadable .npy dtype or shape",
                     f"dtype {descr!r} / shape {shape!r} cannot be sized.")]
    if itemsize is not None and offset + count * itemsize > len(data):
        return [_bad("truncated-data", "Array data is truncated",
                     f"The header promises {count * itemsize} data bytes; the file has "
                     f"{len(data) - offset}.", Severity.MEDIUM)]
    return []


def _npy_itemsize(descr: str) -> int | None:
    match = re.fullmatch(r"[<>|=]?([a-zA-Z?])(\d*)", descr)
    if match is None:
        return None  # structured dtypes: not sized here
    letter, digits = match.groups()
    if digits:
        return int(digits) * (4 if letter == "U" else 1)
    return 1 if letter in "?bB" else None


def scan_safetensors(data: Any) -> list[Issue]:
    """A safetensors file: header JSON, dtypes, shapes and offsets must all add up."""
    size = len(data)
    (n,) = struct.unpack_from("<Q", data)
    if n > _MAX_HEADER or 8 + n > size:
        return [_bad("malformed-safetensors", "safetensors header length out of range",
                     f"The header claims {n} bytes in a {size}-byte file.")]
    try:
        header = json.loads(bytes(data[8:8 + n]))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return [_bad("malformed-safetensors", "safetensors header is not JSON",
                     "The header cannot be parsed; loaders will refuse or misread it.")]
    if not isinstance(header, dict):
        return [_bad("malformed-safetensors", "safetensors header is not an object",
                     "The header must be a JSON object of tensors.")]
    problems: list[str] = []
    spans: list[tuple[int, int, str]] = []
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(
                isinstance(v, str) for v in info.values()
            ):
                problems.append("__metadata__ must map strings to strings")
            continue
        problems.extend(_tensor_problems(name, info, data_size, spans))
        if len(problems) > 20:
            break
    spans.sort()
    for (_, e0, n0), (b1, _, n1) in itertools.pairwise(spans):
        if b1 < e0:
            problems.append(f"tensors {n0!r} and {n1!r} overlap")
            break
    if not problems:
        return []
    return [_bad("malformed-safetensors", "Inconsistent safetensors header",
                 "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))]


def _tensor_problems(
    name: str, info: Any, data_size: int, spans: list[tuple[int, int, str]]
) -> list[str]:
    if not isinstance(info, dict):
        return [f"{name!r} is not an object"]
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _ST_DTYPES:
        return [f"{name!r} has unknown dtype {dtype!r}"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        return [f"{name!r} has a bad shape"]
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(type(o) is int for o in offsets)):
        return [f"{name!r} has bad data_offsets"]
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        return [f"{name!r} points outside the data ({begin}..{end} of {data_size})"]
    if end - begin != math.prod(shape) * _ST_DTYPES[dtype]:
        return [f"{name!r} spans {end - begin} bytes, its shape needs "
                f"{math.prod(shape) * _ST_DTYPES[dtype]}"]
    spans.append((begin, end, name))
    return []


_GGUF_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_TEMPLATE_RISK = re.compile(
    r"__(?:class|globals|builtins|import|subclasses|mro|base|init)__|\bos\.|subprocess|popen"
    r"|\beval\b|\bexec\b|lipsum|cycler|joiner|namespace\.__"
)


def check_template(key: str, template: str) -> list[Issue]:
    """A chat template (GGUF metadata, tokenizer_config.json) that reaches Python internals."""
    if not _TEMPLATE_RISK.search(template):
        return []
    return [Issue(
        "template-injection", Severity.HIGH, "Chat template reaches Python internals",
        f"{key!r} is a Jinja template that mentions Python internals or process "
        "functions; runtimes that render it without a sandbox run code (CVE-2024-34359).",
        key,
    )]


def scan_tokenizer_config(data: Any) -> list[Issue]:
    """The chat template(s) of a Hugging Face ``tokenizer_config.json``."""
    try:
        config = json.loads(bytes(data))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return []
    templates = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(templates, str):
        return check_template("chat_template", templates)
    if isinstance(templates, list):  # named templates: [{"name": ..., "template": ...}]
        return [issue for t in templates if isinstance(t, dict)
                and isinstance(t.get("template"), str)
                for issue in check_template(f"chat_template:{t.get('name')}", t["template"])]
    return []


def scan_gguf(data: Any) -> list[Issue]:
    """A GGUF file: header counts and metadata strings in bounds; chat templates checked."""
    size = len(data)
    try:
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    except struct.error:
        return [_bad("malformed-gguf", "Truncated GGUF header", "The file ends in its header.")]
    if version not in (1, 2, 3) or n_tensors > 1 << 20 or n_kv > 1 << 20:
        return [_bad("malformed-gguf", "Implausible GGUF header",
                     f"version {version}, {n_tensors} tensors, {n_kv} metadata keys.")]
    pos = 24
    issues: list[Issue] = []
    try:
        for _ in range(n_kv):
            key, pos = _gguf_string(data, pos, size)
            (vtype,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if vtype == 8:
                value, pos = _gguf_string(data, pos, size)
                if "chat_template" in key:
                    issues.extend(check_template(key, value))
            else:
                pos = _gguf_skip(data, pos, size, vtype)
    except (struct.error, ValueError, RecursionError) as err:
        issues.append(_bad("malformed-gguf", "Inconsistent GGUF metadata",
                           f"Metadata runs past the end of the file or is invalid: {err}."))
    return issues


def _gguf_string(data: Any, pos: int, size: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    if pos + n > size:
        raise ValueError("string past end of file")
    return bytes(data[pos:pos + n]).decode("utf-8", "replace"), pos + n


def _gguf_skip(data: Any, pos: int, size: int, vtype: int) -> int:
    if vtype in _GGUF_SCALAR:
        return pos + _GGUF_SCALAR[vtype]
    if vtype != 9:
        raise ValueError(f"unknown value type {vtype}")
    item_type, count = struct.unpack_from("<IQ", data, pos)
    pos += 12
    if item_type in _GGUF_SCALAR:
        pos += count * _GGUF_SCALAR[item_type]
        if pos > size:
            raise ValueError("array past end of file")
        return pos
    for _ in range(count):
        if item_type == 8:
            _, pos = _gguf_string(data, pos, size)
        else:
            pos = _gguf_skip(data, pos, size, item_type)
    return pos
