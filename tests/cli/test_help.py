"""Every command's --help, as a user sees it: each option's help text survives Rich markup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bastion.cli.main import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)  # typer vendors its own click
    if subcommands:
        for name, sub in subcommands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, command


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_help_shows_every_bracketed_word(path: tuple[str, ...]) -> None:
    command = dict(COMMANDS)[path]
    # Rich reads an unescaped "[word]" as markup and drops it; "\[word]" shows it.
    wanted = {w for p in command.params for w in re.findall(r"\[[a-z][\w-]*\]",
                                                            (getattr(p, "help", None) or ""))}
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for word in wanted:
        assert word in result.output, f"{' '.join(path)} --help lost {word}"
