"""One regression test per published scanner bypass, named after its advisory.

Sources: picklescan's and fickling's GitHub security advisories (GHSA ids), their CVEs,
and picklescan issue #22. Every payload is assembled from opcodes or written with a
harmless ``__reduce__`` (``os.getcwd``), built in memory or tmp_path, and never loaded.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from bastion.report.finding import Severity
from bastion.supplychain import scan_path
from bastion.supplychain.pickle_analysis import analyse_pickle


def text(value: str) -> bytes:
    raw = value.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def wrap(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


class _Getcwd:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return os.getcwd, ()


PAYLOAD = pickle.dumps({"weights": _Getcwd()}, protocol=2)


def worst(data: bytes) -> Severity | None:
    return max((i.severity for i in analyse_pickle(data).issues), key=lambda s: s.rank,
               default=None)


def critical_subjects(data: bytes) -> set[str]:
    return {i.subject for i in analyse_pickle(data).issues if i.severity is Severity.CRITICAL}


def torch_zip(pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", pkl)
        archive.writestr("archive/version", "3\n")
    return buf.getvalue()


def scan_bytes(tmp_path: Path, name: str, data: bytes) -> set[tuple[str, Severity]]:
    path = tmp_path / name
    path.write_bytes(data)
    result = scan_path(path)
    assert not result.errors and not result.skipped
    return {(f.evidence["rule"], f.severity) for f in result.findings}


# -- denylist gaps in picklescan and fickling: caught here by the allowlist --------------


@pytest.mark.parametrize(
    ("advisory", "module", "name"),
    [
        ("CVE-2025-1716", "pip", "main"),
        ("CVE-2025-10155", "distutils.file_util", "write_file"),
        ("CVE-2025-10157", "asyncio.unix_events", "_UnixSubprocessTransport._start"),
        ("GHSA-vvpj-8cmc-gx39", "pkgutil", "resolve_name"),
        ("GHSA-7wx9-6375-f5wh", "profile", "run"),
        ("GHSA-g38g-8gr9-h9xp", "cProfile", "run"),
        ("GHSA-46h3-79wf-xr6c", "trace", "Trace.runctx"),
        ("GHSA-4675-36f9-wf6r", "pdb", "run"),
        ("GHSA-v7x6-rv5q-mhwc", "timeit", "timeit"),
        ("GHSA-vqmv-47xg-9wpr", "venv", "create"),
        ("GHSA-xp4f-hrf8-rxw7", "ensurepip", "_run_pip"),
        ("GHSA-hgrh-qx5j-jfwx", "http.client", "HTTPConnection"),
        ("GHSA-r8g5-cgf2-4m4m", "idlelib.pyshell", "ModifiedInterpreter.runcode"),
        ("GHSA-84r2-jw7c-4r5q", "_pickle", "loads"),
        ("GHSA-565g-hwwr-4pp3", "marshal", "loads"),
        ("GHSA-565g-hwwr-4pp3", "types", "FunctionType"),
        ("GHSA-r7v6-mfhq-g3m2", "pty", "spawn"),
        ("GHSA-m6fh-58r7-x697", "_posixsubprocess", "fork_exec"),
        ("GHSA-m6fh-58r7-x697", "site", "addsitedir"),
        ("GHSA-m6fh-58r7-x697", "atexit", "register"),
        ("GHSA-6ggj-6f2q-f7mx", "_interpreters", "run_string"),
        ("GHSA-q5qq-mvfm-j35x", "os.path", "os.system"),
        ("CVE-2026-56315", "uuid", "_get_command_stdout"),
        ("CVE-2026-56315", "imaplib", "IMAP4_stream"),
        ("CVE-2026-56315", "_pyrepl.pager", "pipe_pager"),
        ("CVE-2026-56315", "_osx_support", "_read_output"),
        ("CVE-2026-56315", "_aix_support", "_read_cmd_output"),
        ("CVE-2026-56304", "logging", "FileHandler"),
        ("fickling-PR-210-numpy-f2py", "numpy.f2py.crackfortran", "getlincoef"),
    ],
)
def test_denylist_gap_is_critical(advisory: str, module: str, name: str) -> None:
    payload = wrap(call(glob(module, name), text("x")))
    assert worst(payload) is Severity.CRITICAL, advisory


def test_unlisted_gadgets_are_still_findings() -> None:
    """The lesson of every advisory above: a gadget nobody listed yet is still a finding."""
    payload = wrap(call(glob("some_future_module.sub", "run_anything"), text("x")))
    assert worst(payload) is Severity.HIGH


# -- indirections ----------------------------------------------------------------------------


def test_GHSA_m273_6v24_x4m4_operator_attrgetter() -> None:
    module = call(glob("importlib", "import_module"), text("os"))
    payload = wrap(call(call(glob("operator", "attrgetter"), text("system")), module))
    assert "os.system" in critical_subjects(payload)


def test_GHSA_955r_x9j8_7rhh_private_operator_methodcaller() -> None:
    module = call(glob("importlib", "import_module"), text("os"))
    payload = wrap(call(call(glob("_operator", "methodcaller"), text("getcwd")), module))
    assert "os.getcwd" in critical_subjects(payload)


def test_GHSA_vvpj_8cmc_gx39_resolve_name_target_is_named() -> None:
    payload = wrap(call(call(glob("pkgutil", "resolve_name"), text("os:getcwd"))))
    assert "os.getcwd" in critical_subjects(payload)


def test_functools_partial_wrapper_bypass() -> None:
    """fickling PR #210: a partial hides the callee from scanners that only see REDUCE."""
    partial = call(glob("functools", "partial"), glob("posix", "getcwd"))
    assert "posix.getcwd" in critical_subjects(wrap(partial + b")R"))


def test_GHSA_84r2_jw7c_4r5q_nested_pickle_payload_is_analysed() -> None:
    inner = pickle.dumps(_Getcwd(), protocol=2)
    outer = wrap(call(glob("pickle", "loads"), b"C" + bytes([len(inner)]) + inner))
    subjects = critical_subjects(outer)
    assert {"posix.getcwd", "nt.getcwd"} & subjects and "pickle.loads" in subjects


def test_picklescan_issue_22_memo_confusion_stack_global() -> None:
    """imaginaryctf 'Safe Pickle': names reached through the memo, not literal GLOBALs."""
    body = text("os") + b"\x94" + text("getcwd") + b"\x94" + b"00" + b"h\x00h\x01\x93)R"
    assert "os.getcwd" in critical_subjects(wrap(body))


def test_GHSA_6ggj_6f2q_f7mx_call_routed_through_build() -> None:
    """The PoC hid its call in BUILD/__setstate__; BUILD on an import is itself critical."""
    body = glob("_interpreters", "create") + b"}" + text("x") + b"K\x01s" + b"b"
    found = {(i.rule, i.severity) for i in analyse_pickle(wrap(body)).issues}
    assert ("build-on-global", Severity.CRITICAL) in found


def test_GHSA_9gvj_pp9x_gcfr_payload_before_parse_error_is_kept() -> None:
    """Scanners that drop results when parsing fails later in the stream are fooled."""
    broken = PAYLOAD[:-1] + b"\xfe\xfe"
    assert "posix.getcwd" in critical_subjects(broken) or "nt.getcwd" in critical_subjects(broken)


# -- containers ------------------------------------------------------------------------------


def test_CVE_2025_1889_non_standard_extension(tmp_path: Path) -> None:
    assert ("dangerous-global", Severity.CRITICAL) in scan_bytes(tmp_path, "model.cfg", PAYLOAD)


def test_CVE_2025_10155_pickle_behind_a_torch_extension(tmp_path: Path) -> None:
    assert ("dangerous-global", Severity.CRITICAL) in scan_bytes(tmp_path, "model.bin", PAYLOAD)


def test_CVE_2025_1944_zip_name_mismatch(tmp_path: Path) -> None:
    data = torch_zip(PAYLOAD)
    local = data.index(b"archive/data.pkl")  # the first copy is the local header's
    data = data[:local] + b"archive/dXta.pkl" + data[local + 16:]
    assert ("dangerous-global", Severity.CRITICAL) in scan_bytes(tmp_path, "m.pt", data)


def test_CVE_2025_1945_zip_flag_bits(tmp_path: Path) -> None:
    raw = bytearray(torch_zip(PAYLOAD))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := raw.find(sig, start)) >= 0:
            raw[at + flag_at] |= 0x01  # "encrypted"
            start = at + 4
    assert ("dangerous-global", Severity.CRITICAL) in scan_bytes(tmp_path, "m.pt", bytes(raw))


def test_CVE_2025_10156_bad_crc(tmp_path: Path) -> None:
    raw = bytearray(torch_zip(PAYLOAD))
    for sig, crc_at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        at = raw.find(sig)
        struct.pack_into("<I", raw, at + crc_at, 0xDEADBEEF)
    found = scan_bytes(tmp_path, "m.pt", bytes(raw))
    assert ("dangerous-global", Severity.CRITICAL) in found
    assert ("crc-mismatch", Severity.MEDIUM) in found


def test_CVE_2024_34359_gguf_chat_template(tmp_path: Path) -> None:
    key, value = b"tokenizer.chat_template", b"{{ cycler.__init__.__globals__.os.popen('id') }}"
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    data += struct.pack("<IQ", 8, len(value)) + value
    assert ("template-injection", Severity.HIGH) in scan_bytes(tmp_path, "m.gguf", data)
