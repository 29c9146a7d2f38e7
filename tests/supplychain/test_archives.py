"""Archive checks: traversal, links, duplicates, overlaps, bombs, nesting, tar."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest

from bastion.report.finding import Severity
from bastion.supplychain import Limits, scan_path


def rules(path: Path, **kw: object) -> set[tuple[str, Severity]]:
    result = scan_path(path, **kw)  # type: ignore[arg-type]
    assert not result.errors
    return {(f.evidence["rule"], f.severity) for f in result.findings}


def make_zip(path: Path, members: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo("link")
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, symlink)
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/cron.d/x", "a/../../b", "C:\\x.txt"])
def test_traversal_entries(tmp_path: Path, name: str) -> None:
    path = make_zip(tmp_path / "a.zip", {name: b"x", "ok.txt": b"y"})
    assert ("archive-traversal", Severity.HIGH) in rules(path)


def test_near_miss_names_are_fine(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"a..b/c.txt": b"x", "dots...txt": b"y"})
    assert rules(path) == set()


def test_symlink_entry(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"ok.txt": b"y"}, symlink="/etc/passwd")
    assert ("archive-symlink", Severity.HIGH) in rules(path)


def test_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps([1]))
        archive.writestr("archive/data.pkl", pickle.dumps([2]))
    assert ("duplicate-entry", Severity.HIGH) in rules(path)


def test_overlapping_entries(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a.bin", b"\0" * 100)
        archive.writestr("b.bin", b"\0" * 100)
    raw = bytearray(buf.getvalue())
    central = raw.rfind(b"PK\x01\x02")  # second entry's central header
    raw[central + 42:central + 46] = (0).to_bytes(4, "little")  # points at the first member
    path = tmp_path / "o.zip"
    path.write_bytes(bytes(raw))
    assert ("overlapping-entries", Severity.HIGH) in rules(path)


def test_bomb_by_declared_ratio(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", {"z.bin": b"\0" * (8 << 20)})
    assert ("zip-bomb", Severity.HIGH) in rules(path, limits=Limits(max_ratio=100))
    assert ("zip-bomb", Severity.HIGH) not in rules(path, limits=Limits(max_ratio=10_000))


def test_nested_archives_are_followed_to_a_depth(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("deep/model.pkl", b"\x80\x02cposix\ngetcwd\n)R.")
    path = make_zip(tmp_path / "outer.zip", {"inner.zip": inner.getvalue()})
    result = scan_path(path)
    [finding] = [f for f in result.findings if f.evidence["rule"] == "dangerous-global"]
    assert finding.location is not None and finding.location.endswith(
        "outer.zip!inner.zip/deep/model.pkl")
    shallow = rules(path, limits=Limits(max_depth=1))
    assert ("nested-too-deep", Severity.MEDIUM) in shallow


def test_tar_checks_and_members(tmp_path: Path) -> None:
    path = tmp_path / "m.tar"
    with tarfile.open(path, "w") as archive:
        payload = b"\x80\x02cposix\ngetcwd\n)R."
        info = tarfile.TarInfo("model.pkl")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        archive.addfile(link)
        up = tarfile.TarInfo("../up.txt")
        up.size = 1
        archive.addfile(up, io.BytesIO(b"x"))
    found = rules(path)
    assert {("dangerous-global", Severity.CRITICAL), ("archive-symlink", Severity.HIGH),
            ("archive-traversal", Severity.HIGH)} <= found


def test_gzip_bomb_is_stopped(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "m.pkl.gz"
    path.write_bytes(gzip.compress(b"\0" * (16 << 20)))
    assert ("zip-bomb", Severity.HIGH) in rules(path, limits=Limits(max_member_bytes=4 << 20))


def test_keras_v3_archive_config_is_checked(tmp_path: Path) -> None:
    config = {"module": "keras", "class_name": "Sequential", "config": {"layers": [
        {"module": "keras.layers", "class_name": "Lambda", "config": {"function": {
            "class_name": "__lambda__", "config": {"code": "4wAAAA=="}}}}]}}
    import json

    path = make_zip(tmp_path / "m.keras", {
        "config.json": json.dumps(config).encode(), "metadata.json": b"{}",
        "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 64})
    result = scan_path(path)
    assert result.files[0].format == "keras-v3"
    assert {(f.evidence["rule"], f.severity) for f in result.findings} == {
        ("keras-lambda", Severity.CRITICAL)}


def test_torchscript_custom_op_namespaces(tmp_path: Path) -> None:
    code = b"def forward(self, x):\n    return torch.ops.evil_ns.run(torch.ops.aten.relu(x))\n"
    path = make_zip(tmp_path / "ts.pt", {
        "archive/data.pkl": b"\x80\x02c__torch__.Net\nNet\n)\x81.",
        "archive/constants.pkl": b"\x80\x02).",
        "archive/code/__torch__/net.py": code,
        "archive/version": b"3\n"})
    result = scan_path(path)
    assert result.files[0].format == "torchscript"
    assert {(f.evidence["rule"], f.evidence["subject"]) for f in result.findings} == {
        ("custom-operator", "evil_ns")}
