"""Regenerate bastion's framework tables (package data) from their sources.

    python scripts/generate_frameworks.py ../shared/reference/ATLAS.yaml

Writes ``src/bastion/report/data/atlas.json`` (ATLAS version; tactics and techniques
with ids, names, URLs, tactic ids and parents; no description text) and the JSON
Schema of the report. A test checks both files match what this script produces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "bastion" / "report" / "data"


def atlas_table(source: Path) -> dict[str, object]:
    """The ids, names and links of ATLAS tactics and techniques, in source order."""
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    matrix = doc["matrices"][0]
    tactics = [
        {"id": t["id"], "name": t["name"], "url": f"https://atlas.mitre.org/tactics/{t['id']}"}
        for t in matrix["tactics"]
    ]
    techniques = [
        {
            "id": t["id"],
            "name": t["name"],
            "url": f"https://atlas.mitre.org/techniques/{t['id']}",
            "tactics": list(t.get("tactics", [])),
            "parent": t.get("subtechnique-of"),
        }
        for t in matrix["techniques"]
    ]
    return {"framework": "MITRE ATLAS", "version": str(doc["version"]),
            "tactics": tactics, "techniques": techniques}


def dump(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "src"))
    from bastion.report.finding import SCHEMA_VERSION
    from bastion.report.schema import report_schema

    (DATA / "atlas.json").write_text(dump(atlas_table(Path(argv[0]))), encoding="utf-8")
    schema_file = ROOT / "src" / "bastion" / "report" / "schema" / f"report-{SCHEMA_VERSION}.json"
    schema_file.write_text(dump(report_schema()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
