"""Secrets left in model folders: configs, notebooks, scripts (API keys, tokens, keys).

Detection is Yelp's detect-secrets (its plugins and false-positive filters); bastion
adds severities and masking. A found secret is never shown whole: only its first four
characters and its length.
"""

from __future__ import annotations

from pathlib import Path

from bastion.report.finding import Severity
from bastion.supplychain._issue import Issue

__all__ = ["MAX_TEXT_BYTES", "available", "find_secrets", "mask"]

MAX_TEXT_BYTES = 1 << 20  # larger text files are not searched (logs, datasets)
# Detectors that only guess from randomness: often hashes or ids in model configs.
_GUESSES = frozenset({"Base64 High Entropy String", "Hex High Entropy String"})


def available() -> bool:
    """Whether detect-secrets is installed (it is part of the supplychain extra)."""
    try:
        import detect_secrets  # noqa: F401
    except ImportError:
        return False
    return True


def mask(value: str) -> str:
    """``hf_abcd...`` -> ``hf_a… (37 chars)``: enough to recognise, never enough to use."""
    return f"{value[:4]}… ({len(value)} chars)"


def find_secrets(path: Path) -> list[Issue]:
    """Secrets in one text file, one issue per line (named detectors over entropy guesses)."""
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        found = SecretsCollection()
        found.scan_file(str(path))
    by_line: dict[int, list[tuple[str, str]]] = {}
    for _, secrets in found.data.items():
        for secret in secrets:
            by_line.setdefault(secret.line_number, []).append(
                (secret.type, secret.secret_value or ""))
    issues = []
    for line, hits in sorted(by_line.items()):
        named = sorted({kind for kind, _ in hits if kind not in _GUESSES})
        kinds = named or sorted({kind for kind, _ in hits})
        shown = mask(max((value for _, value in hits), key=len))  # some plugins cut values
        issues.append(Issue(
            "secret", Severity.HIGH if named else Severity.LOW,
            f"{' / '.join(kinds)} in {path.name}" + ("" if named else " (high-entropy string)"),
            f"Line {line} holds what looks like a {' / '.join(kinds)}: {shown}. Anyone who "
            "downloads the model gets it; revoke it and remove it.",
            f"line{line}",
        ))
    return issues
