"""Person names without a language model, from name lists, shape and context.

- ``person``: a capitalised first name and surname that are both in the name lists
  (``Jane Smith``, ``Smith, Jane``, ``Ludwig van Beethoven``).
- ``person-shape``: a listed first name and a surname no list knows that is not a common
  English word either (``Lucia Offredi``, but not ``Mark Complete``), scored at the
  threshold.
- ``person-cued``: only one of the two is listed (``Gerard Bellweather``), which is weak
  evidence on its own, so it needs a cue in the same sentence: a verb of meeting
  (``spoke with``), a relation (``sister``, ``wife``) or a label (``patient``).
- ``person-titled``: any capitalised name after an honorific or a label that introduces
  a person (``Dr. Okonkwo``, ``Signed by ...``), which is evidence enough.

A span that is itself a place (``Sierra Leone``) or that ends in a word naming a thing,
not a family (``Grace Hospital``, ``May Day``, ``Virginia Beach``), is never a person.
"""

from collections.abc import Callable

from bastion.privacy.pii._dictionary import (
    NAME_TOKEN,
    common_words,
    first_names,
    surnames,
    words,
)
from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

_PARTICLE = (
    r"(?: (?:[Vv]on|[Vv]an|[Dd]e|[Dd]a|[Dd]i|[Dd]u|[Dd]el|[Dd]ella|[Dd]er|[Dd]en|[Tt]er|[Tt]en"
    r"|[Ll]e|[Ll]a|[Dd]os|[Dd]as|zu)(?: der| den| la)?)?"
)
_FIRST_LAST = rf"{NAME_TOKEN}(?: [A-Z]\.?)?{_PARTICLE} {NAME_TOKEN}"
# Lookaheads let candidates overlap: in "Seen John Smith" the failed "Seen John" must
# not swallow "John".
_PATTERNS = (
    Pattern(name="first-last", regex=rf"\b(?=({_FIRST_LAST})\b)", score=0.75, group=1),
    Pattern(
        name="last-comma-first", regex=rf"\b(?=({NAME_TOKEN}, {NAME_TOKEN})\b)", score=0.7, group=1
    ),
)
# Last words that name a place, an institution or a date rather than a family.
_NOT_A_FAMILY = frozenset(
    {"day", "eve", "hospital", "clinic", "center", "centre", "street", "avenue", "road",
     "drive", "boulevard", "beach", "river", "lake", "square", "station", "airport",
     "university", "college", "school", "county", "city", "island", "islands", "valley",
     "mountain", "springs", "falls", "heights", "plaza", "building", "group", "company",
     "inc", "ltd", "corp", "foundation", "institute", "society", "services", "health",
     "care", "pharmacy", "medical", "motors", "tower", "gardens", "general", "memorial",
     "regional", "community", "national", "federal", "state", "number", "monday", "tuesday",
     "wednesday", "thursday", "friday", "saturday", "sunday"}
)  # fmt: skip
# First words that start a place name or a phrase rather than a given name.
_NOT_A_GIVEN_NAME = frozenset(
    {"san", "santa", "santo", "saint", "st", "fort", "port", "mount", "lake", "new", "north",
     "south", "east", "west", "upper", "lower", "los", "las", "copyright", "dear", "happy",
     "hello", "font", "last", "first", "next", "see", "use", "read"}
)  # fmt: skip
# English function words that some locales' lists also hold as names ("The", "My", "No").
_FUNCTION_WORDS = frozenset(
    {"the", "my", "our", "your", "his", "her", "their", "its", "this", "that", "these",
     "other", "another", "each", "every", "all", "any", "some", "no", "not", "and", "or",
     "but", "if", "so", "as", "at", "by", "for", "from", "in", "on", "of", "to", "with"}
)  # fmt: skip
# Words that introduce a person; "with", "by" and "from" only inside a phrase, since
# alone they introduce anything ("with Covered Code", "by Derivative Works").
_PERSON_CUES = (
    "patient", "name", "mr", "mrs", "ms", "dr", "contact", "signed", "spoke", "met", "saw",
    "called", "visited", "accompanied", "wife", "husband", "son", "daughter", "mother",
    "father", "sister", "brother", "friend", "partner", "nurse", "caregiver", "guardian",
    "relative", "neighbour", "neighbor", "colleague", "dear", "hello", "thanks", "seen by",
    "seen with", "written by", "referred by", "letter from", "call from", "talked to",
)  # fmt: skip
_CATEGORIES = ("HIPAA:name", "GDPR:personal-data", "CCPA:identifier")


def _split(value: str) -> tuple[str, str] | None:
    """(first, last) lower-cased, or None when the span is a place or a thing's name."""
    if value.lower() in words("states") or value.lower() in words("countries"):
        return None
    if "," in value:
        last, first = (part.strip() for part in value.split(",", 1))
    else:
        parts = value.split()
        first, last = parts[0], parts[-1]
    first, last = first.lower(), last.lower()
    if {first, last} & _FUNCTION_WORDS or last in _NOT_A_FAMILY:
        return None
    if first in _NOT_A_FAMILY or first in _NOT_A_GIVEN_NAME:
        return None
    return first, last


def _both_listed(value: str) -> str | None:
    parts = _split(value)
    if parts is None:
        return "a place or an institution"
    if parts[0] not in first_names():
        return "first name not in the name lists"
    if parts[1] not in surnames():
        return "surname not in the name lists"
    return None


def _given_name_rare_surname(value: str) -> str | None:
    parts = _split(value)
    if parts is None:
        return "a place or an institution"
    first, last = parts
    if first not in first_names():
        return "first name not in the name lists"
    if last in surnames() or len(last) < 3:
        return "surname listed or too short (the other recognizers judge it)"
    common = common_words()
    if not common or last in common:
        return "surname is a common English word (or no word list)"
    return None


def _one_listed(value: str) -> str | None:
    parts = _split(value)
    if parts is None:
        return "a place or an institution"
    if parts[0] in first_names() or parts[1] in surnames(census=False):
        return None
    return "neither part in the name lists"


def _listed(
    name: str, patterns: tuple[Pattern, ...], validate: Callable[[str], str | None], why: str
) -> Recognizer:
    """Register one name-list recognizer: same cues and categories, its own rule."""
    return RECOGNIZERS.register(name)(
        Recognizer(
            entity="PERSON",
            patterns=patterns,
            context=_PERSON_CUES,
            validate=validate,
            validator_name=why,
            categories=_CATEGORIES,
        )
    )


def _rescored(score: float, suffix: str, patterns: tuple[Pattern, ...]) -> tuple[Pattern, ...]:
    return tuple(
        Pattern(name=f"{p.name}-{suffix}", regex=p.regex, score=score, group=p.group)
        for p in patterns
    )


PERSON = _listed("person", _PATTERNS, _both_listed, "name-list look-up")
# "First Last" only: in "Steuernummer, German" the comma form would read a nationality
# as a given name.
PERSON_SHAPE = _listed(
    "person-shape",
    _rescored(0.5, "rare-surname", _PATTERNS[:1]),
    _given_name_rare_surname,
    "listed first name, surname not a common word",
)
PERSON_CUED = _listed(
    "person-cued", _rescored(0.4, "one-listed", _PATTERNS), _one_listed, "one part listed"
)

PERSON_TITLED = RECOGNIZERS.register("person-titled")(
    Recognizer(
        entity="PERSON",
        patterns=(
            # A label that introduces a person: any capitalised two- or three-word name
            # (any alphabet) after it, whether or not the name lists know it.
            Pattern(
                name="labelled-name",
                regex=r"\b(?:[Pp]atient|[Nn]ame:|[Ss]igned by|[Rr]eferred by|[Ss]pouse)\s+"
                r"((?:[^\W\d_a-z][^\W\d_]+(?:['-][^\W\d_]+)?)(?: [^\W\d_a-z][^\W\d_]+){1,2})",
                score=0.7,
                group=1,
            ),
            Pattern(
                name="honorific-name",
                regex=rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? ({NAME_TOKEN}(?: {NAME_TOKEN})?)\b",
                score=0.85,
                group=1,
            ),
        ),
        categories=_CATEGORIES,
    )
)
