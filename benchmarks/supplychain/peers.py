"""Run one peer scanner in-process over files; print one JSON line per file.

Runs inside the peer venv (benchmarks/.venv-supplychain), never in bastion's:
    python peers.py {modelscan|picklescan|fickling} PATH...   (files or folders)
Each line: {"file", "verdict": flagged|clean|error|skipped, "detail", "seconds"} where
seconds is CPU time (process_time), steadier than wall time on a shared machine.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import zipfile
from typing import Any


def picklescan(path: str) -> tuple[str, str]:
    from picklescan.scanner import scan_directory_path, scan_file_path

    r = scan_directory_path(path) if os.path.isdir(path) else scan_file_path(path)
    if r.scan_err:
        return "error", "scan_err"
    if r.issues_count or r.infected_files:
        return "flagged", f"{r.issues_count} dangerous, {r.suspicious_count} suspicious"
    if r.scanned_files == 0:
        return "skipped", "no pickle scanned"
    return "clean", f"{r.suspicious_count} suspicious"


def modelscan(path: str) -> tuple[str, str]:
    from modelscan.modelscan import ModelScan

    r: dict[str, Any] = ModelScan().scan(path)
    if r.get("issues"):
        return "flagged", "; ".join(sorted({i.get("operator", "?") for i in r["issues"]}))[:200]
    if r.get("errors"):
        return "error", str(r["errors"][0].get("description", r["errors"][0]))[:200]
    summary = r.get("summary", {})
    if not summary.get("scanned", {}).get("total_scanned", 0):
        return "skipped", "not scanned"
    return "clean", ""


def fickling(path: str) -> tuple[str, str]:
    import fickling as fk

    if os.path.isdir(path):  # fickling has no folder scan: its API over every file
        verdicts = [fickling(os.path.join(path, name)) for name in sorted(os.listdir(path))]
        flagged = [v for v in verdicts if v[0] == "flagged"]
        return flagged[0] if flagged else ("clean", f"{len(verdicts)} files")
    if zipfile.is_zipfile(path):
        results = list(fk.scan_zip_archive(path, graceful=True).values())
    else:
        results = [fk.scan_file(path, graceful=True)]
    if not results:
        return "skipped", "no pickle in archive"
    # graceful mode turns parse failures into SUSPICIOUS plus errors: that is "could not
    # look" (an error), not a detection.
    parsed = [r for r in results if not r.errors]
    worst = max(parsed, key=lambda r: r.severity.value[0], default=None)
    if worst is not None and worst.severity.name != "LIKELY_SAFE":
        return "flagged", worst.severity.name
    if len(parsed) < len(results):
        return "error", str(next(r.errors for r in results if r.errors))[:200]
    return "clean", ""


TOOLS = {"picklescan": picklescan, "modelscan": modelscan, "fickling": fickling}


def main() -> None:
    logging.disable(logging.CRITICAL)
    tool = TOOLS[sys.argv[1]]
    for path in sys.argv[2:]:
        t0 = time.process_time()
        try:
            verdict, detail = tool(path)
        except Exception as err:  # a peer crash is a data point, not a stop
            verdict, detail = "error", f"{type(err).__name__}: {err}"[:200]
        print(json.dumps({"file": path, "verdict": verdict, "detail": detail,
                          "seconds": time.process_time() - t0}), flush=True)


if __name__ == "__main__":
    main()
