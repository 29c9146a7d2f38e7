"""Entry point: builds the Typer app and turns user errors into one line and exit 2.

Only this package prints or exits. Command modules import heavy libraries (torch,
scikit-learn) inside their functions, so ``bastion --help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer

from bastion import __version__
from bastion.errors import BastionError

app = typer.Typer(
    name="bastion",
    help="Attack, audit and harden machine-learning models, their data and their files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bastion {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """bastion: can your model be fooled, leak, be stolen; is its data or file safe?"""


def _register() -> None:
    """Every module in bastion/cli/ with a ``register(app)`` adds its commands.

    Those modules import only typer at module level and defer heavy imports to the
    command body, so this stays fast.
    """
    import bastion.cli

    for info in pkgutil.iter_modules(bastion.cli.__path__):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"bastion.cli.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a ``BastionError`` becomes ``bastion: error: ...`` and exit code 2."""
    try:
        app(args=argv, prog_name="bastion", standalone_mode=True)
    except BastionError as err:
        print(f"bastion: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("bastion: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # a bug in bastion, not the user's fault
        if os.environ.get("BASTION_DEBUG"):
            raise
        print(
            f"bastion: internal error: {type(err).__name__}: {err} "
            "(set BASTION_DEBUG=1 for a traceback and please report it)",
            file=sys.stderr,
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
