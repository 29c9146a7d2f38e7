import subprocess
import sys


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
