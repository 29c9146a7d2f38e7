import subprocess
import sys
from pathlib import Path

import pytest

from bastion.cli.main import main


def test_importing_the_cli_does_not_import_torch() -> None:
    code = "import sys, bastion.cli.main; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_version_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bastion.cli.main", "--version"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.startswith("bastion ")


@pytest.mark.parametrize("command", [
    ["scan", "--data", "{data}"],
    ["data", "audit", "{data}"],
    ["artifact", "scan", "{data}"],
    ["privacy", "audit", "{data}"],
])
@pytest.mark.parametrize(("flags", "message"), [
    (["--format", "text"], "format"),
    (["--report", "{tmp}/missing/r.json"], "does not exist"),
])
def test_a_bad_report_choice_fails_before_any_work(
        command: list[str], flags: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The data path does not exist either: the report choice must be refused first.
    data = tmp_path / "not-here.npz"
    fill = {"data": str(data), "tmp": str(tmp_path)}
    args = [a.format(**fill) for a in command + flags]
    if "--report" in args and command[0] != "data":
        args[args.index("--report")] = "--out"
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "not-here" not in err
