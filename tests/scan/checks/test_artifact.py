import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bastion.report import Finding, Severity
from bastion.scan import ScanContext, Target
from bastion.scan.checks.artifact import ArtifactIntegrity


def _slugs(path: Path) -> dict[str, Finding]:
    found = ArtifactIntegrity().run(Target(model_path=path), ScanContext())
    return {f.id.split("/")[1]: f for f in found}


def _safetensors(path: Path) -> Path:
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(path))
    os.chmod(path, 0o644)
    return path


def test_safe_private_file_only_records_identity(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    path = _safetensors(tmp_path / "m.safetensors")
    found = _slugs(path)
    assert set(found) == {"identity"}
    identity = found["identity"]
    assert identity.severity is Severity.INFO
    assert identity.evidence["format"] == "safetensors" and identity.evidence["suffix_agrees"]
    assert identity.evidence["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert identity.metrics[0].value == path.stat().st_size and identity.metrics[0].unit == "bytes"


def test_permissions_and_disguise(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)
    path = _safetensors(tmp_path / "m.onnx")
    os.chmod(path, 0o666)
    found = _slugs(path)
    assert found["world-writable"].severity is Severity.CRITICAL
    assert found["folder-world-writable"].severity is Severity.MEDIUM
    assert found["suffix-mismatch"].severity is Severity.MEDIUM
    assert not found["identity"].evidence["suffix_agrees"]
    assert "group-writable" not in found  # world-writable already says it
    os.chmod(path, 0o664)
    os.chmod(tmp_path, 0o1777)  # sticky: others cannot replace our file
    found = _slugs(path)
    assert found["group-writable"].severity is Severity.LOW and "world-writable" not in found
    assert "folder-world-writable" not in found and "folder-group-writable" not in found


@pytest.mark.parametrize(("folder_mode", "expected"), [
    (0o775, {"folder-group-writable"}),
    (0o755, set()),   # near miss: only the owner may write
    (0o1775, set()),  # sticky bit: group members cannot replace others' files
])
def test_group_writable_folder(tmp_path: Path, folder_mode: int, expected: set[str]) -> None:
    path = _safetensors(tmp_path / "m.safetensors")
    os.chmod(tmp_path, folder_mode)
    assert set(_slugs(path)) - {"identity"} == expected


def test_pickle_formats_can_run_code(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    found = _slugs(path)
    assert found["code-on-load"].severity is Severity.HIGH
    assert "bastion artifact scan" in found["code-on-load"].recommendation


def test_compressed_stream_it_cannot_open_can_run_code_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import joblib

    path = tmp_path / "m.joblib"
    joblib.dump({"w": [1.0, 2.0]}, path, compress="lz4")
    os.chmod(path, 0o644)
    monkeypatch.setitem(sys.modules, "lz4", None)  # the decompressor is not installed
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    assert _slugs(path)["code-on-load"].severity is Severity.HIGH


def test_model_folder_hashes_its_manifest_and_checks_every_file(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    os.chmod(tmp_path, 0o755)
    os.chmod(model, 0o755)
    os.chmod(model / "sub", 0o755)
    _safetensors(model / "weights.safetensors")
    (model / "sub" / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    os.chmod(model / "sub" / "extra.pkl", 0o646)
    found = _slugs(model)
    identity = found["identity"]
    assert identity.evidence["files"] == 2 and identity.evidence["format"] == "directory"
    before = identity.evidence["sha256"]
    assert found["code-on-load"].evidence["files"] == ["sub/extra.pkl"]
    assert found["world-writable"].evidence["files"] == ["sub/extra.pkl"]
    (model / "sub" / "extra.pkl").write_bytes(pickle.dumps({"a": 2}))
    assert _slugs(model)["identity"].evidence["sha256"] != before
