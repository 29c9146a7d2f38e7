"""Wall time of `bastion --help` and of importing the CLI, against importing torch.

Run: .venv/bin/python benchmarks/cli/import_time.py [--repeat 7]
Prints a Markdown table (median of the runs, each in a fresh interpreter).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _median_s(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    rows = [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        ("bastion --help", [str(BIN / "bastion"), "--help"]),
        ("python -c 'import bastion.cli.main'", [sys.executable, "-c", "import bastion.cli.main"]),
        ("python -c 'import torch' (for scale)", [sys.executable, "-c", "import torch"]),
    ]
    print(f"| command | median wall time (s), {repeat} runs |")
    print("|---|---|")
    for label, argv in rows:
        print(f"| `{label}` | {_median_s(argv, repeat):.3f} |")


if __name__ == "__main__":
    main()
