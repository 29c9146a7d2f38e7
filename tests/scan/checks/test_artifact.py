import os
from pathlib import Path

import numpy as np

from bastion.report import Severity
from bastion.scan import ScanContext, Target
from bastion.scan.checks.artifact import ArtifactIntegrity


def _slugs(path: Path) -> dict[str, object]:
    found = ArtifactIntegrity().run(Target(model_path=path), ScanContext())
    return {f.id.split("/")[1]: f for f in found}


def _safetensors(path: Path) -> Path:
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(path))
    os.chmod(path, 0o644)
    return path


def test_safe_private_file_only_records_identity(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    found = _slugs(_safetensors(tmp_path / "m.safetensors"))
    assert set(found) == {"identity"}
    assert found["identity"].evidence["format"] == "safetensors"
    assert len(found["identity"].evidence["sha256"]) == 64


def test_permissions_and_disguise(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)
    path = _safetensors(tmp_path / "m.onnx")
    os.chmod(path, 0o666)
    found = _slugs(path)
    assert found["world-writable"].severity is Severity.CRITICAL
    assert found["folder-world-writable"].severity is Severity.MEDIUM
    assert found["suffix-mismatch"].severity is Severity.MEDIUM
    os.chmod(path, 0o664)
    os.chmod(tmp_path, 0o1777)  # sticky: others cannot replace our file
    found = _slugs(path)
    assert "group-writable" in found and "world-writable" not in found
    assert "folder-world-writable" not in found


def test_pickle_formats_can_run_code(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    assert _slugs(path)["code-on-load"].severity is Severity.HIGH
