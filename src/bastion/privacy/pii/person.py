"""Person names without a language model: a capitalised first and last name that both
appear in the shipped name lists (SSA first names, Census surnames), ``Last, First``, or
any capitalised name after an honorific (``Dr.``, ``Mrs``), which is evidence enough."""

from bastion.privacy.pii._dictionary import words
from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

_NAME = r"[A-Z][a-z]+(?:['-][A-Z][a-z]+)?"


def _validate(value: str) -> str | None:
    if "," in value:
        last, first = (part.strip() for part in value.split(",", 1))
    else:
        parts = value.split()
        first, last = parts[0], parts[-1]
    if first.lower() not in words("first_names"):
        return "first name not in the name list"
    if last.lower() not in words("last_names"):
        return "surname not in the name list"
    return None


PERSON = RECOGNIZERS.register("person")(
    Recognizer(
        entity="PERSON",
        patterns=(
            # Lookaheads let candidates overlap: in "Seen John Smith" the failed
            # "Seen John" must not swallow "John".
            Pattern(
                name="first-last",
                regex=rf"\b(?=({_NAME}(?: [A-Z]\.?)? {_NAME})\b)",
                score=0.75,
                group=1,
            ),
            Pattern(
                name="last-comma-first", regex=rf"\b(?=({_NAME}, {_NAME})\b)", score=0.7, group=1
            ),
        ),
        context=("patient", "name", "mr", "mrs", "ms", "dr", "seen", "by", "contact", "signed"),
        validate=_validate,
        validator_name="name-list look-up",
        categories=("HIPAA:name", "GDPR:personal-data", "CCPA:identifier"),
    )
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
                regex=rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? ({_NAME}(?: {_NAME})?)\b",
                score=0.85,
                group=1,
            ),
        ),
        categories=("HIPAA:name", "GDPR:personal-data", "CCPA:identifier"),
    )
)
