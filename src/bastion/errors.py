"""Errors a user can cause, each with a one-line message that says what to do.

Every class also subclasses the matching built-in exception, so code that already
catches ``FileNotFoundError`` or ``ValueError`` keeps working::

    BastionError
     ├── InputNotFoundError          (FileNotFoundError)  a path that does not exist
     ├── UnreadableInputError        (OSError)            a path we may not or cannot read
     ├── UnsupportedFormatError      (ValueError)         a file whose format we do not load
     ├── InvalidDataError            (ValueError)         empty, NaN/inf, labels out of range
     │    └── ShapeMismatchError                          data that does not fit the model
     ├── UnsafeArtifactError         (PermissionError)    a file the scanner refused to load
     ├── UnsupportedModelError       (TypeError)          a model that cannot do what was asked
     ├── ConfigError                 (ValueError)         bad flags, settings or parameters
     ├── UnknownPluginError          (LookupError)        a registry name that does not exist
     └── RemoteModelError            (ConnectionError)    an HTTP model endpoint that failed

The CLI prints ``str(error)`` on one line and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "BastionError",
    "ConfigError",
    "InputNotFoundError",
    "InvalidDataError",
    "NonNumericFeaturesError",
    "RemoteModelError",
    "ShapeMismatchError",
    "UnknownPluginError",
    "UnreadableInputError",
    "UnsafeArtifactError",
    "UnsupportedFormatError",
    "UnsupportedModelError",
]


class BastionError(Exception):
    """Base of every error the user can cause and fix; never a bug in bastion."""

    exit_code = 2

    def __str__(self) -> str:
        # LookupError/KeyError would quote the message; keep it one plain line.
        text = " ".join(str(a) for a in self.args) if self.args else type(self).__name__
        return " ".join(text.split())


class InputNotFoundError(BastionError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class UnreadableInputError(BastionError, OSError):
    """A path exists but cannot be read (permissions, a folder where a file was expected)."""


class UnsupportedFormatError(BastionError, ValueError):
    """A file whose format bastion does not know how to load."""


class InvalidDataError(BastionError, ValueError):
    """Data that cannot be used: empty, NaN/inf, labels out of range, wrong dtype."""


class NonNumericFeaturesError(InvalidDataError):
    """A table whose feature columns hold text: fine to audit as a file, not to feed a model."""


class ShapeMismatchError(InvalidDataError):
    """Data whose shape does not fit the model or the other arrays it comes with."""


class UnsafeArtifactError(BastionError, PermissionError):
    """A model file that could run code when loaded and was not cleared by the scanner."""


class UnsupportedModelError(BastionError, TypeError):
    """A model that lacks a capability the request needs (e.g. gradients)."""


class ConfigError(BastionError, ValueError):
    """An invalid option, flag, setting or hyper-parameter."""


class UnknownPluginError(BastionError, LookupError):
    """A name that is not in a registry (attack, check, renderer...)."""


class RemoteModelError(BastionError, ConnectionError):
    """A remote model endpoint that could not be reached or answered badly.

    ``status`` is the HTTP status when the endpoint answered one: 403 or 429 in the
    middle of an attack means the endpoint defended itself, which checks report.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
