import pytest

from bastion import errors


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.InputNotFoundError, FileNotFoundError),
        (errors.UnreadableInputError, OSError),
        (errors.UnsupportedFormatError, ValueError),
        (errors.InvalidDataError, ValueError),
        (errors.ShapeMismatchError, errors.InvalidDataError),
        (errors.UnsafeArtifactError, PermissionError),
        (errors.UnsupportedModelError, TypeError),
        (errors.ConfigError, ValueError),
        (errors.UnknownPluginError, LookupError),
        (errors.RemoteModelError, ConnectionError),
    ],
)
def test_each_error_is_a_bastion_error_and_its_builtin(cls: type, builtin: type) -> None:
    err = cls("x")
    assert isinstance(err, errors.BastionError)
    assert isinstance(err, builtin)


def test_message_is_one_plain_line_even_for_lookup_errors() -> None:
    err = errors.UnknownPluginError("unknown check 'foo';\n  did you mean 'bar'?")
    assert str(err) == "unknown check 'foo'; did you mean 'bar'?"
