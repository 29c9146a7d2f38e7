"""OWASP ML Top 10 (2023) and MITRE ATLAS: the ids findings map to, with names and links.

The tables are package data (``report/data``); the ATLAS one is generated from the
ATLAS distribution file by ``scripts/generate_frameworks.py`` and records its version.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict

from bastion.errors import ConfigError, UnknownPluginError

__all__ = [
    "Entry", "atlas_technique", "atlas_version", "entries", "is_known", "lookup", "owasp",
]

_FRAMEWORKS = {"owasp": "OWASP ML Top 10", "atlas": "MITRE ATLAS"}

class Entry(BaseModel):
    """One framework item: an OWASP risk, an ATLAS tactic or an ATLAS technique."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    url: str
    framework: str
    kind: str  # "risk", "tactic", "technique"
    tactics: tuple[str, ...] = ()
    parent: str | None = None


@cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files("bastion.report").joinpath(f"data/{name}").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _table() -> dict[str, Entry]:
    owasp = _load("owasp_ml_top10.json")
    atlas = _load("atlas.json")
    table = {
        e["id"]: Entry(framework="OWASP ML Top 10", kind="risk", **e) for e in owasp["items"]
    }
    for t in atlas["tactics"]:
        table[t["id"]] = Entry(framework="MITRE ATLAS", kind="tactic", **t)
    for t in atlas["techniques"]:
        table[t["id"]] = Entry(
            framework="MITRE ATLAS", kind="technique", id=t["id"], name=t["name"],
            url=t["url"], tactics=tuple(t["tactics"]), parent=t["parent"],
        )
    return table


def atlas_version() -> str:
    return str(_load("atlas.json")["version"])


def is_known(framework_id: str) -> bool:
    """Whether the id exists, spelled exactly (checks must declare canonical ids)."""
    return framework_id in _table()


def lookup(framework_id: str) -> Entry:
    """The entry for an id such as ``ML01``, ``AML.TA0007`` or ``AML.T0043.000``."""
    try:
        return _table()[framework_id.strip().upper()]
    except KeyError:
        kind = "OWASP ML Top 10 id (ML01..ML10)" if framework_id.upper().startswith("ML") \
            else "MITRE ATLAS id"
        raise UnknownPluginError(
            f"{framework_id!r} is not a known {kind}: see `bastion frameworks list`"
        ) from None


def _of_kind(framework_id: str, kind: str) -> Entry:
    entry = lookup(framework_id)
    if entry.kind != kind:
        raise UnknownPluginError(
            f"{framework_id!r} is an ATLAS {entry.kind}, not a {kind}: see "
            "`bastion frameworks list`"
        )
    return entry


def owasp(risk_id: str) -> Entry:
    """The OWASP ML Top 10 risk ``ML01``..``ML10``."""
    return _of_kind(risk_id, "risk")


def atlas_technique(technique_id: str) -> Entry:
    """The ATLAS technique or sub-technique, e.g. ``AML.T0043`` or ``AML.T0024.000``."""
    return _of_kind(technique_id, "technique")


def entries(framework: str | None = None) -> list[Entry]:
    """All entries, or those of ``"owasp"`` or ``"atlas"``."""
    everything = list(_table().values())
    if framework is None:
        return everything
    if framework not in _FRAMEWORKS:
        raise ConfigError(f"unknown framework {framework!r}: use owasp or atlas")
    return [e for e in everything if e.framework == _FRAMEWORKS[framework]]
