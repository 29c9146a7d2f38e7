"""`bastion artifact scan` through the real CLI: exit codes, formats, user errors."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest


def _bastion(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("BASTION_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", "artifact", "scan", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifact")
    (root / "clean.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    (root / "evil.pkl").write_bytes(b"\x80\x02cposix\ngetcwd\n)R.")
    (root / "custom.pkl").write_bytes(b"\x80\x02cmylib.models\nNet\n)\x81.")
    (root / "noise.xyz").write_bytes(bytes(range(256)))
    return {p.stem: p for p in root.iterdir()}


def test_clean_file_exits_0_with_json_on_stdout(files: dict[str, Path]) -> None:
    run = _bastion(files["clean"], cwd=files["clean"].parent)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["findings"] == [] and report["metadata"]["checks_run"] == ["supplychain"]
    assert report["metadata"]["artifacts"][0]["format"] == "pickle"


def test_findings_at_fail_on_exit_1(files: dict[str, Path]) -> None:
    run = _bastion(files["evil"], files["clean"], cwd=files["clean"].parent)
    assert run.returncode == 1
    [finding] = json.loads(run.stdout)["findings"]
    assert finding["severity"] == "critical" and finding["owasp"] == ["ML06"]


def test_fail_on_threshold(files: dict[str, Path]) -> None:
    assert _bastion(files["custom"], cwd=files["custom"].parent).returncode == 1
    run = _bastion(files["custom"], "--fail-on", "critical", cwd=files["custom"].parent)
    assert run.returncode == 0


def test_nothing_applicable_exits_3(files: dict[str, Path]) -> None:
    run = _bastion(files["noise"], cwd=files["noise"].parent)
    assert run.returncode == 3
    assert "unknown binary" in json.loads(run.stdout)["skipped"][0]["reason"]


@pytest.mark.parametrize(("args", "message"), [
    (["nope.pkl"], "does not exist"),
    (["{clean}", "--fail-on", "severe"], "fail_on"),
    (["{clean}", "--out", "report.xyz"], "--format"),
])
def test_user_errors_exit_2(files: dict[str, Path], args: list[str], message: str) -> None:
    filled = [a.format(**files) for a in args]
    run = _bastion(*filled, cwd=files["clean"].parent)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr


def test_report_written_to_out(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    run = _bastion(files["evil"], "--out", out, "--hash", "-q", cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    report = json.loads(out.read_text())
    assert len(report["metadata"]["artifacts"][0]["sha256"]) == 64


def test_sign_then_verify_through_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("model_signing")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bastion.cli.main", "artifact", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)

    assert cli("sign", "model.bin", "--key", "key.pem").returncode == 0
    assert cli("verify", "model.bin", "--key", "pub.pem").returncode == 0
    model.write_bytes(b"weightz")
    failed = cli("verify", "model.bin", "--key", "pub.pem")
    assert failed.returncode == 1 and "changed: model.bin" in failed.stderr


def test_bom_through_the_cli(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("cyclonedx")
    out = tmp_path / "bom.json"
    run = subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", "artifact", "bom", str(files["clean"]),
         "--no-environment", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert [c["name"] for c in doc["components"]] == ["clean.pkl"]


def test_every_report_format_through_the_shared_renderers(
    files: dict[str, Path], tmp_path: Path
) -> None:
    import jsonschema

    sarif_schema = Path(__file__).parents[1] / "report" / "fixtures" / "sarif-2.1.0-rtm.5.json"
    for name in ("r.sarif", "r.html", "r.md"):
        run = _bastion(files["evil"], "--out", tmp_path / name, "--quiet", cwd=tmp_path)
        assert run.returncode == 1, run.stderr
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    jsonschema.Draft4Validator(json.loads(sarif_schema.read_text())).validate(sarif)
    assert sarif["runs"][0]["results"][0]["level"] == "error"
    assert "getcwd" in (tmp_path / "r.html").read_text()
    assert "critical" in (tmp_path / "r.md").read_text()
