"""Places: US states and countries from the shipped lists, a city named right before a US
state abbreviation (``Springfield, IL``), and a listed city (GeoNames, 100,000+ people)
right after a word that introduces a place (``lives in Leeds``). HIPAA counts every unit
smaller than a state, GDPR any location that helps single a person out.

A listed city needs that word because many city names are also given names
(``Charlotte``, ``Austin``, ``Florence``): ``in Florence`` is a place, ``Florence said``
is not."""

from bastion.privacy.pii._dictionary import NAME_TOKEN, alternation, cities
from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer
from bastion.privacy.pii.zip_code import STATES

_PLACES_MULTIWORD = alternation("states", "countries", multiword=True)
_PLACES_ONE_WORD = alternation("states", "countries", multiword=False)
# Not the start of a longer capitalised name ("the New York Times", "Jordan River").
_NOT_CONTINUED = r"(?!\w|[ -][A-Z])"

LOCATION = RECOGNIZERS.register("location")(
    Recognizer(
        entity="LOCATION",
        patterns=(
            # A full multi-word name (``Svalbard & Jan Mayen Islands``) outscores the
            # person recognizer's reading of a part of it (``Jan Mayen``).
            Pattern(
                name="state-or-country-multiword",
                regex=rf"\b(?:{_PLACES_MULTIWORD}){_NOT_CONTINUED}",
                score=0.8,
            ),
            Pattern(
                name="state-or-country",
                regex=rf"\b(?:{_PLACES_ONE_WORD}){_NOT_CONTINUED}",
                score=0.6,
            ),
        ),
        context=("in", "from", "lives", "born", "resident", "moved", "state", "country"),
        categories=("HIPAA:geographic", "GDPR:personal-data", "CCPA:personal-information"),
    )
)

CITY = RECOGNIZERS.register("city")(
    Recognizer(
        entity="LOCATION",
        patterns=(
            Pattern(
                name="city-before-state",
                regex=rf"\b([A-Z][a-z]+(?: [A-Z][a-z]+){{0,2}}),? (?:{STATES})\b(?! [a-z])",
                score=0.8,
                group=1,
            ),
        ),
        categories=("HIPAA:geographic", "GDPR:personal-data", "CCPA:personal-information"),
    )
)


def _listed_city(value: str) -> str | None:
    return None if value in cities() else "not a listed city"


CITY_LISTED = RECOGNIZERS.register("city-listed")(
    Recognizer(
        entity="LOCATION",
        patterns=(
            Pattern(
                name="place-word-city",
                regex=r"\b(?:[Ii]n|[Nn]ear|[Ll]ives in|[Bb]orn in|[Bb]ased in|[Mm]oved to"
                r"|[Mm]oved from|[Rr]elocated to|[Tt]ravell?ed to|[Ff]lew to|[Ii]s from"
                r"|[Cc]omes from|[Vv]isiting|[Vv]isited) "
                rf"({NAME_TOKEN}(?: {NAME_TOKEN}){{0,2}})(?!'s)\b",
                score=0.6,
                group=1,
            ),
        ),
        validate=_listed_city,
        validator_name="GeoNames city list",
        categories=("HIPAA:geographic", "GDPR:personal-data", "CCPA:personal-information"),
    )
)
