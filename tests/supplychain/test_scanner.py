"""scan_path over real model files: benign ones are clean, hostile ones are caught, and
every bad input (empty, truncated, unreadable, huge folders) gets a result, not a crash."""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bastion.errors import InputNotFoundError, UnsafeArtifactError
from bastion.progress import ProgressEvent
from bastion.report.finding import Severity
from bastion.supplychain import Limits, clear_for_loading, scan_path

torch = pytest.importorskip("torch")


class _Getcwd:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return os.getcwd, ()


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("benign")
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    torch.save(torch.nn.Linear(3, 2).state_dict(), root / "state.pt")
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()), root / "full.pt")
    torch.save(torch.nn.Linear(3, 2).state_dict(), root / "legacy.pt",
               _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), root / "script.pt")
    joblib.dump(model, root / "model.joblib")
    joblib.dump(model, root / "model.joblib.gz", compress=("gzip", 3))
    joblib.dump(model, root / "model.joblib.xz", compress=("xz", 3))
    joblib.dump(model, root / "model.joblib.bz2", compress=("bz2", 3))
    (root / "model.pkl").write_bytes(pickle.dumps(model))
    np.save(root / "array.npy", np.arange(10.0))
    np.savez(root / "arrays.npz", a=np.arange(3), b=np.ones((2, 2)))
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((2, 3), np.float32)}, str(root / "model.safetensors"))
    onnx = pytest.importorskip("onnx")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", 1, [1])],
        [onnx.helper.make_tensor_value_info("y", 1, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), str(root / "model.onnx"))
    return root


def test_benign_ml_files_are_clean(benign: Path) -> None:
    result = scan_path(benign)
    assert result.findings == [], [f.id for f in result.findings]
    assert result.errors == [] and result.skipped == []
    formats = {Path(f.path).name: f.format for f in result.files}
    assert formats["state.pt"] == "torch-zip" and formats["legacy.pt"] == "torch-legacy"
    assert formats["script.pt"] == "torchscript" and formats["arrays.npz"] == "numpy-npz"
    assert formats["model.joblib.gz"] == "gzip" and formats["model.safetensors"] == "safetensors"


def test_each_benign_file_is_cleared_for_loading(benign: Path) -> None:
    for path in sorted(benign.iterdir()):
        assert clear_for_loading(path).clear, path.name


def test_progress_event_per_file(benign: Path) -> None:
    events: list[ProgressEvent] = []
    result = scan_path(benign, progress=events.append)
    assert len(events) == len(result.files)
    assert events[-1].done and events[-1].total == len(result.files)


def test_hostile_torch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": _Getcwd()}, path)
    result = scan_path(path)
    finding = result.findings[0]
    assert finding.severity is Severity.CRITICAL and finding.check == "supplychain"
    assert finding.location is not None and finding.location.endswith("/data.pkl")
    assert finding.owasp == ["ML06"] and "AML.T0010" in finding.atlas
    with pytest.raises(UnsafeArtifactError, match=r"refusing to load .*critical"):
        clear_for_loading(path)
    assert not clear_for_loading(path, trust=True).clear


def test_hostile_compressed_joblib_is_caught(tmp_path: Path) -> None:
    joblib.dump({"m": _Getcwd()}, tmp_path / "m.joblib.gz", compress=("gzip", 3))
    assert scan_path(tmp_path / "m.joblib.gz").worst() is Severity.CRITICAL


def test_payload_hidden_in_joblib_array_bytes_is_caught(tmp_path: Path) -> None:
    """Bytes joblib reads as array data are opcodes to a plain pickle.load."""
    evil = b"cos\ngetcwd\n0"

    def text(value: str) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value.encode()

    dtype = b"cnumpy\ndtype\n(" + text("u1") + b"\x89\x88tR"
    state = b"}(" + text("shape") + b"K" + bytes([len(evil)]) + b"\x85" + text("dtype") + dtype
    state += text("order") + text("C") + b"u"
    wrapper = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81"
    path = tmp_path / "m.joblib"
    path.write_bytes(b"\x80\x04" + wrapper + state + b"b" + evil + b".")
    rules = {f.evidence["rule"] for f in scan_path(path).findings}
    assert rules == {"dangerous-global"}


def test_missing_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        scan_path(tmp_path / "nope.pt")


def test_empty_and_unknown_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "blob.dat2").write_bytes(bytes(range(256)))
    result = scan_path(tmp_path)
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons == {"empty.pt": "empty file (0 bytes)", "blob.dat2": "unknown binary format"}
    assert result.files == [] and not result.clear
    with pytest.raises(UnsafeArtifactError, match="not analysed"):
        clear_for_loading(tmp_path / "empty.pt")


def test_text_files_are_searched_for_secrets_but_never_cleared(tmp_path: Path) -> None:
    pytest.importorskip("detect_secrets")
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    (tmp_path / "config.json").write_text(f'{{"github_token": "{token}"}}\n')
    (tmp_path / "README.md").write_text("# model card\n")
    result = scan_path(tmp_path)
    assert {Path(f.path).name: f.format for f in result.files} == {
        "config.json": "text", "README.md": "text"}
    [secret] = result.findings
    assert secret.evidence["rule"] == "secret" and secret.severity is Severity.HIGH
    assert token not in secret.description and "ghp_… (40 chars)" in secret.description
    assert secret.atlas == ["AML.T0055"]
    with pytest.raises(UnsafeArtifactError, match="text, not a model format"):
        clear_for_loading(tmp_path / "README.md")


def test_protocol_0_pickle_with_any_name_is_analysed(tmp_path: Path) -> None:
    """Protocol 0 is printable text; a text-looking file that parses as a pickle is one."""
    path = tmp_path / "weights.data"
    path.write_bytes(pickle.dumps(_Getcwd(), protocol=0))
    result = scan_path(path)
    assert result.files[0].format == "pickle" and result.worst() is Severity.CRITICAL
    (tmp_path / "notes.data").write_text("(see the model card)\n")
    assert scan_path(tmp_path / "notes.data").files[0].format == "text"


def test_truncated_zip_is_a_finding(benign: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes((benign / "state.pt").read_bytes()[:300])
    result = scan_path(path)
    assert {f.evidence["rule"] for f in result.findings} == {"malformed-archive"}


def test_truncated_pickle_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps(list(range(100)))[:50])
    assert {f.evidence["rule"] for f in scan_path(path).findings} == {"malformed-pickle"}


def test_unreadable_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.pkl"
    path.write_bytes(pickle.dumps([1]))
    (tmp_path / "fine.pkl").write_bytes(pickle.dumps([2]))
    real_open = os.open

    def guarded(file: str, flags: int, *args: int, **kwargs: int) -> int:
        if str(file) == str(path):  # root reads any file: refuse this one by hand
            raise PermissionError(13, "Permission denied")
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)
    result = scan_path(tmp_path)
    assert [e.path for e in result.errors] == [str(path)]
    assert "cannot read: Permission denied" in result.errors[0].message
    assert [Path(f.path).name for f in result.files] == ["fine.pkl"]


def test_symlink_out_of_the_folder_is_high(tmp_path: Path) -> None:
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(pickle.dumps([1]))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "model.pkl").symlink_to(outside)
    (repo / "alias.pkl").symlink_to(repo / "real.pkl")
    (repo / "real.pkl").write_bytes(pickle.dumps([2]))
    result = scan_path(repo)
    assert [f.evidence["rule"] for f in result.findings] == ["symlink-escape"]
    assert [Path(s.path).name for s in result.skipped] == ["alias.pkl"]


def test_undecodable_file_names_are_reported_escaped(tmp_path: Path) -> None:
    import json

    from bastion.report.finding import Report, RunMetadata

    raw = os.path.join(os.fsencode(tmp_path), b"\xff\xfe.pkl")
    with open(raw, "wb") as fh:
        fh.write(b"\x80\x02cposix\ngetcwd\n)R.")
    result = scan_path(tmp_path)
    [finding] = result.findings
    assert finding.location is not None and finding.location.endswith("\\xff\\xfe.pkl")
    report = Report(metadata=RunMetadata(tool_version="0", command="t",
                                         started_at="2026-01-01T00:00:00Z"),
                    findings=result.findings)
    assert json.loads(report.model_dump_json())["findings"][0]["severity"] == "critical"


def test_symlink_loop_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = scan_path(tmp_path)
    assert {s.reason for s in result.skipped} == {"symlink loop: points nowhere"}


def test_suffix_lying_about_content_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "weights.safetensors").write_bytes(pickle.dumps([1.0]))
    result = scan_path(tmp_path / "weights.safetensors")
    finding = result.findings[0]
    assert finding.evidence["rule"] == "format-mismatch" and finding.severity is Severity.HIGH


def test_ten_thousand_files(tmp_path: Path) -> None:
    payload = pickle.dumps({"a": 1})
    for i in range(100):
        folder = tmp_path / f"d{i:03d}"
        folder.mkdir()
        for j in range(100):
            (folder / f"{j}.pkl").write_bytes(payload)
    result = scan_path(tmp_path)
    assert len(result.files) == 10_000 and result.findings == [] and not result.errors


def test_sparse_file_larger_than_memory_reads_only_the_pickle(tmp_path: Path) -> None:
    """A 64 GiB legacy torch file: the pickles are read, the (sparse) payload never."""
    path = tmp_path / "huge.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path, _use_new_zipfile_serialization=False)
    with open(path, "r+b") as fh:
        fh.truncate(64 << 30)
    result = scan_path(path)
    assert result.findings == [] and result.files[0].size_bytes == 64 << 30


def test_zip_member_bomb_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.bin", b"\0" * (40 << 20))
    result = scan_path(path, limits=Limits(max_ratio=50))
    rules = {f.evidence["rule"] for f in result.findings}
    assert "zip-bomb" in rules


def test_hashes_on_request(benign: Path) -> None:
    import hashlib

    path = benign / "model.safetensors"
    [scanned] = scan_path(path, hashes=True).files
    assert scanned.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert scan_path(path).files[0].sha256 == ""


def test_hugging_face_tokenizer_config_template_is_checked(tmp_path: Path) -> None:
    import json

    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}))
    [finding] = scan_path(tmp_path).findings
    assert finding.evidence["rule"] == "template-injection"


def test_bare_zlib_joblib_is_decompressed_and_judged(tmp_path: Path) -> None:
    """joblib's default compressor writes a bare zlib stream (no 'ZF' prefix)."""
    import zlib

    from bastion.supplychain import scan_path as scan

    x = np.random.default_rng(0).normal(size=(30, 3))
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)),
                tmp_path / "benign.joblib", compress=3)
    (tmp_path / "hostile.joblib").write_bytes(zlib.compress(b"\x80\x02cposix\ngetcwd\n)R."))
    benign = scan(tmp_path / "benign.joblib")
    assert benign.clear and benign.files[0].format == "zlib"
    hostile = scan(tmp_path / "hostile.joblib")
    assert [f.severity.value for f in hostile.findings] == ["critical"]


def _lz4_joblib(tmp_path: Path) -> tuple[Path, Path]:
    pytest.importorskip("lz4")
    x = np.random.default_rng(0).normal(size=(30, 3))
    benign = tmp_path / "benign.joblib"
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), benign, compress="lz4")
    hostile = tmp_path / "hostile.joblib"
    joblib.dump({"m": _Getcwd()}, hostile, compress="lz4")
    return benign, hostile


def test_lz4_joblib_is_decompressed_and_judged(tmp_path: Path) -> None:
    benign, hostile = _lz4_joblib(tmp_path)
    result = scan_path(benign)
    assert result.clear and result.files[0].format == "lz4"
    assert scan_path(hostile).worst() is Severity.CRITICAL


def test_lz4_without_the_package_is_a_finding_not_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    benign, _ = _lz4_joblib(tmp_path)
    monkeypatch.setitem(sys.modules, "lz4", None)  # import lz4 now raises ImportError
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    result = scan_path(benign)
    [finding] = result.findings
    assert finding.evidence["rule"] == "unscanned-compression"
    assert finding.severity is Severity.MEDIUM and "bastion-ml[supplychain]" in finding.description
    assert result.skipped == [] and result.errors == [] and not result.clear


def test_text_behind_a_data_suffix_is_a_mismatch_not_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bastion.supplychain.scanner.available", lambda: False)  # no secrets
    path = tmp_path / "weights.safetensors"
    path.write_text("just words\n")
    [finding] = scan_path(path).findings
    assert finding.evidence["rule"] == "format-mismatch" and finding.severity is Severity.MEDIUM


@pytest.mark.parametrize("method", ["zlib", "gzip", "bz2", "xz", "lzma", "lz4"])
def test_truncated_compressed_joblib_is_a_finding(tmp_path: Path, method: str) -> None:
    """A cut stream is never clean: lz4 even holds back the whole cut block."""
    if method == "lz4":
        pytest.importorskip("lz4")
    whole = tmp_path / "whole.joblib"
    joblib.dump({"w": np.arange(2000.0)}, whole, compress=(method, 3))
    cut = tmp_path / "cut.joblib"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert scan_path(whole).clear
    rules = {(f.evidence["rule"], f.severity) for f in scan_path(cut).findings}
    assert ("malformed-archive", Severity.HIGH) in rules


def test_old_joblib_zf_prefix_is_skipped_to_the_zlib_stream(tmp_path: Path) -> None:
    """joblib < 0.10 wrote 'ZF0x<hex length>' and padding before the zlib stream."""
    import zlib

    payload = pickle.dumps({"m": _Getcwd()}, protocol=2)
    path = tmp_path / "old.joblib"
    path.write_bytes(f"ZF{len(payload):#x}".encode().ljust(19) + zlib.compress(payload))
    result = scan_path(path)
    assert result.files[0].format == "zlib" and result.worst() is Severity.CRITICAL
