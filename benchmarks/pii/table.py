"""Turn ``results.json`` from ``bench.py`` into ``RESULTS.md`` (per-type P/R/F1 table),
followed by the hand-written caveats in ``NOTES.md``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = ("bastion", "presidio-noop", "scrubadub")


def main() -> None:
    results = json.loads((HERE / "results.json").read_text())
    entities = [e for e in results["bastion"]["metrics"] if e not in ("micro", "macro")]
    base = results["presidio-noop"]
    lines = [
        "# PII detection: bastion vs Presidio (NoOp NLP engine) vs scrubadub",
        "",
        f"Seed {results['seed']}, {results['notes']} notes, {results['rows']} table rows. "
        "Command: `benchmarks/.venv-pii/bin/python benchmarks/pii/bench.py --seed 0 "
        "&& benchmarks/.venv-pii/bin/python benchmarks/pii/table.py`.",
        "",
        "Throughput is per CPU second of the benchmark process (wall-clock in brackets); "
        "the ratio column is table rows per CPU second over Presidio's batch analyzer.",
        "",
        "| tool | micro P | micro R | micro F1 | macro F1 | notes/s | table rows/s "
        "| table × Presidio | table cell P / R / F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in TOOLS:
        r = results[tool]
        m = r["metrics"]
        ratio = r["table_rows_per_cpu_s"] / base["table_rows_per_cpu_s"]
        lines.append(
            f"| {tool} | {m['micro']['precision']:.3f} | {m['micro']['recall']:.3f} | "
            f"{m['micro']['f1']:.3f} | {m['macro']['f1']:.3f} | "
            f"{r['notes_per_cpu_s']:.0f} ({r['notes_per_s']:.0f}) | "
            f"{r['table_rows_per_cpu_s']:.0f} ({r['table_rows_per_s']:.0f}) | {ratio:.1f}× | "
            f"{r['table_cells']['precision']:.2f} / "
            f"{r['table_cells']['recall']:.2f} / {r['table_cells']['f1']:.2f} |"
        )
    lines += ["", "Per type, P / R / F1 (support = gold spans):", "",
              "| entity | support | " + " | ".join(TOOLS) + " |",
              "|---|---|" + "---|" * len(TOOLS)]  # fmt: skip
    for e in entities:
        cells = []
        for tool in TOOLS:
            v = results[tool]["metrics"][e]
            cells.append(f"{v['precision']:.2f} / {v['recall']:.2f} / {v['f1']:.2f}")
        support = results["bastion"]["metrics"][e]["support"]
        lines.append(f"| {e} | {support} | " + " | ".join(cells) + " |")
    lines += ["", (HERE / "NOTES.md").read_text().rstrip()]  # the hand-written caveats
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
