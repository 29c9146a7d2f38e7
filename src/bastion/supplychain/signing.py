"""Sign and verify model files and folders in the OpenSSF model-signing format.

bastion does not invent a signature format: it writes and checks the Sigstore bundle
(DSSE envelope over an in-toto statement listing every file's sha256) that the
``model-signing`` package defines, with a local elliptic-curve key and no transparency
log. So a bastion signature verifies with ``model_signing`` and the other way round.
What bastion adds is a one-call API, clear errors, and a verification result that says
which files changed, appeared or disappeared.

Ed25519 keys are refused with a one-line fix: model-signing 1.1.1, the newest release on
PyPI (checked 2026-12-06), signs with elliptic-curve keys on P-256, P-384 or P-521 only,
and a signature it cannot verify would not be interoperable. ``_check_key`` is the one
place to widen when model-signing accepts Ed25519.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.errors import ConfigError, InputNotFoundError

__all__ = ["Verification", "default_signature_path", "sign", "verify"]


@dataclass(frozen=True)
class Verification:
    """The outcome of checking a signature: ``ok``, or the problems, one line each."""

    path: str
    signature: str
    ok: bool
    problems: list[str] = field(default_factory=list)


def default_signature_path(path: str | os.PathLike[str]) -> Path:
    """``model.pt`` -> ``model.pt.sig``; a folder ``repo/`` -> ``repo.sig`` beside it."""
    target = Path(path)
    return target.with_name(target.name + ".sig")


def _model_signing() -> Any:
    try:
        import model_signing
    except ImportError:
        raise ConfigError(
            "signing needs model-signing: pip install 'bastion-ml[supplychain]'"
        ) from None
    return model_signing


def _check_key(key: Path, *, private: bool) -> None:
    """Refuse missing files and key types the model-signing format cannot carry."""
    if not key.is_file():
        raise InputNotFoundError(f"key file {key} does not exist: check --key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = key.read_bytes()
    try:
        loaded: Any = (serialization.load_pem_private_key(data, password=None) if private
                       else serialization.load_pem_public_key(data))
    except TypeError:  # an encrypted private key: model-signing asks for the password
        return
    except ValueError:
        kind = "private" if private else "public"
        raise ConfigError(f"{key} is not a PEM {kind} key: pass an EC key in PEM form") \
            from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        raise ConfigError(
            f"{key} is a {type(loaded).__name__.lstrip('_')}: the model-signing format "
            "(model-signing 1.1) needs an elliptic-curve key, e.g. "
            "'openssl ecparam -name prime256v1 -genkey -noout -out key.pem'"
        )


def sign(
    path: str | os.PathLike[str], *, private_key: str | os.PathLike[str],
    signature: str | os.PathLike[str] | None = None, password: str | None = None,
) -> Path:
    """Sign a file or folder with an EC private key (PEM); returns the signature path."""
    target = Path(path)
    if not target.exists():
        raise InputNotFoundError(f"{target} does not exist: check the path")
    key = Path(private_key)
    _check_key(key, private=True)
    out = Path(signature) if signature is not None else default_signature_path(target)
    ms = _model_signing()
    config = ms.signing.Config().use_elliptic_key_signer(private_key=key, password=password)
    try:
        config.sign(target, out)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"cannot sign {target}: {_first_line(err)}") from None
    return out


def verify(
    path: str | os.PathLike[str], *, public_key: str | os.PathLike[str],
    signature: str | os.PathLike[str] | None = None,
) -> Verification:
    """Check a file or folder against its signature with an EC public key (PEM)."""
    target = Path(path)
    if not target.exists():
        raise InputNotFoundError(f"{target} does not exist: check the path")
    sig = Path(signature) if signature is not None else default_signature_path(target)
    if not sig.is_file():
        raise InputNotFoundError(f"signature {sig} does not exist: pass --signature")
    key = Path(public_key)
    _check_key(key, private=False)
    ms = _model_signing()
    config = ms.verifying.Config().use_elliptic_key_verifier(public_key=key)
    try:
        config.verify(target, sig)
    except ValueError as err:
        return Verification(str(target), str(sig), False, _problems(str(err), target.name))
    return Verification(str(target), str(sig), True)


_HASH = re.compile(r"Hash mismatch for '(.+?)'")
_LISTED = re.compile(r"(Extra|Missing) files found in model '.*?': (.+)|"
                     r"(Missing) files in model '.*?': (.+)")


def _problems(message: str, name: str) -> list[str]:
    """model-signing's mismatch report as short lines: changed/added/removed FILE.

    A single signed file is reported as '.'; ``name`` replaces it.
    """
    start = message.find("[")
    try:
        items = ast.literal_eval(message[start:]) if start >= 0 else [message]
    except (ValueError, SyntaxError):
        items = [message]
    problems = []
    for item in items if isinstance(items, list) else [message]:
        text = str(item)
        if (m := _HASH.search(text)) is not None:
            changed = m.group(1)
            problems.append(f"changed: {name if changed == '.' else changed}")
        elif (m := _LISTED.search(text)) is not None:
            kind = m.group(1) or m.group(3)
            names = m.group(2) or m.group(4)
            label = "added" if kind == "Extra" else "removed"
            problems.extend(f"{label}: {n.strip()}" for n in names.split(","))
        else:
            problems.append(_first_line(text))
    return problems


def _first_line(err: object) -> str:
    return str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
