"""Places: US states and countries from the shipped lists, and a city named right before
a US state abbreviation (``Springfield, IL``) — HIPAA counts every unit smaller than a state,
GDPR any location that helps single a person out."""

from bastion.privacy.pii._dictionary import alternation
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
