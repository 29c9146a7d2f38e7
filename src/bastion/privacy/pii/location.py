"""Places: US states and countries from the shipped lists, and a city named right before
a US state abbreviation (``Springfield, IL``) — HIPAA counts every unit smaller than a state,
GDPR any location that helps single a person out."""

from bastion.privacy.pii._dictionary import alternation
from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer
from bastion.privacy.pii.zip_code import STATES

LOCATION = RECOGNIZERS.register("location")(
    Recognizer(
        entity="LOCATION",
        patterns=(
            Pattern(
                name="state-or-country",
                regex=rf"\b(?:{alternation('states', 'countries')})(?!\w|[ -][A-Z])",
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
