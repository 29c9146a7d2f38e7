"""Assemble benchmarks/RESULTS.md from each area's own RESULTS.md (latest run of each).

Run: python benchmarks/collect_results.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    parts = ["# bastion benchmark results",
             "",
             "Each section is the latest run of one area's benchmark, with the command that "
             "produced it. Regenerate this file with `python benchmarks/collect_results.py`.",
             ""]
    for results in sorted(HERE.glob("*/RESULTS*.md")):
        text = results.read_text(encoding="utf-8").strip()
        body = "\n".join("#" + line if line.startswith("#") else line
                         for line in text.splitlines())
        parts += [f"<!-- from {results.relative_to(HERE)} -->", body, ""]
    (HERE / "RESULTS.md").write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()
