"""Name and place word lists shipped with bastion (``data/names.json``), loaded once.

Provenance: taken from Faker's en_US/en providers (MIT licence); Faker's first names come
from US Social Security Administration baby-name data and its surnames from the US Census
Bureau surname list, both US government works in the public domain. The file records this
in its ``source`` field.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

__all__ = ["alternation", "words"]


@cache
def _lists() -> dict[str, list[str]]:
    raw = resources.files("bastion.privacy.pii").joinpath("data/names.json").read_text("utf-8")
    data: dict[str, list[str]] = json.loads(raw)
    return data


@cache
def words(kind: str) -> frozenset[str]:
    """The list ``kind`` (first_names, last_names, states, countries), lower-cased."""
    return frozenset(w.lower() for w in _lists()[kind])


def alternation(*kinds: str) -> str:
    """A regex alternation of the lists' entries as written, longest first (so
    ``West Virginia`` wins over ``Virginia``)."""
    entries = sorted({w for kind in kinds for w in _lists()[kind]}, key=lambda w: (-len(w), w))
    return "|".join(re.escape(w) for w in entries)
