"""Signing interoperates with the model-signing package in both directions, and any
change to the signed files fails verification with a clear line per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import ConfigError, InputNotFoundError
from bastion.supplychain.signing import default_signature_path, sign, verify

model_signing = pytest.importorskip("model_signing")


def _keys(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / "key.pem", folder / "pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(b"\x08" + b"\0" * 64)
    (root / "config.json").write_text('{"a": 1}')
    (root / "sub" / "tokenizer.json").write_text("{}")
    return root


def test_bastion_signature_verifies_with_model_signing(repo: Path, tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    sig = sign(repo, private_key=private)
    assert sig == default_signature_path(repo) == tmp_path / "repo.sig"
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        repo, sig)


def test_model_signing_signature_verifies_with_bastion(repo: Path, tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    sig = tmp_path / "theirs.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(repo, sig)
    assert verify(repo, public_key=public, signature=sig).ok


def test_single_file(repo: Path, tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    target = repo / "model.safetensors"
    sign(target, private_key=private)
    assert verify(target, public_key=public).ok
    target.write_bytes(target.read_bytes()[:-1] + b"\x01")
    assert verify(target, public_key=public).problems == ["changed: model.safetensors"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: (r / "config.json").write_text('{"a": 2}'), "changed: config.json"),
        (lambda r: (r / "extra.py").write_text("x"), "added: extra.py"),
        (lambda r: (r / "sub" / "tokenizer.json").unlink(), "removed: sub/tokenizer.json"),
    ],
)
def test_any_change_fails_with_a_clear_line(
    repo: Path, tmp_path: Path, change: object, problem: str
) -> None:
    private, public = _keys(tmp_path)
    sign(repo, private_key=private)
    change(repo)  # type: ignore[operator]
    result = verify(repo, public_key=public)
    assert not result.ok and result.problems == [problem]


def test_wrong_key_fails(repo: Path, tmp_path: Path) -> None:
    private, _ = _keys(tmp_path)
    sign(repo, private_key=private)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong = _keys(other)
    result = verify(repo, public_key=wrong)
    assert not result.ok and "key" in result.problems[0].lower()


def test_user_errors(repo: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private, public = _keys(tmp_path)
    with pytest.raises(InputNotFoundError, match="does not exist"):
        sign(tmp_path / "nope", private_key=private)
    with pytest.raises(InputNotFoundError, match="signature"):
        verify(repo, public_key=public)
    ed = tmp_path / "ed.pem"
    ed.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="elliptic-curve"):
        sign(repo, private_key=ed)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM"):
        sign(repo, private_key=tmp_path / "junk.pem")
