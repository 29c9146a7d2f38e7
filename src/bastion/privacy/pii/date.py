"""Calendar dates (ISO, US and European numeric forms, month names); HIPAA counts every
date element but the year. Impossible dates (2024-02-30) are rejected."""

import re
from datetime import datetime

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_FORMATS = (
    "%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y", "%m/%d/%y", "%d %B %Y", "%d %b %Y",
    "%B %d %Y", "%b %d %Y", "%d/%m/%Y",
)  # fmt: skip


def _validate(value: str) -> str | None:
    clean = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b", "", value).replace(",", "").replace(".", " ")
    clean = " ".join(clean.split())
    for fmt in _FORMATS:
        spaced = fmt.replace(".", " ")
        try:
            parsed = datetime.strptime(clean, spaced)
        except ValueError:
            continue
        if 1900 <= parsed.year <= 2100:
            return None
    return "not a real calendar date"


DATE = RECOGNIZERS.register("date")(
    Recognizer(
        entity="DATE_TIME",
        patterns=(
            Pattern(
                name="date-iso", regex=r"(?<![\w.-])\d{4}-\d{2}-\d{2}(?![\w-]|\.\d)", score=0.6
            ),
            Pattern(
                name="date-numeric",
                regex=r"(?<![\w./-])\d{1,2}([/.-])\d{1,2}\1(?:\d{4}|\d{2})(?![\w/-]|\.\d)",
                score=0.55,
            ),
            Pattern(
                name="date-month-name",
                regex=rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)? {_MONTHS}\.?,? \d{{4}}"
                rf"|{_MONTHS}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}})\b",
                score=0.7,
            ),
        ),
        context=("dob", "born", "birth", "date", "admitted", "discharged", "visit", "died"),
        negative_context=("version", "release"),
        validate=_validate,
        validator_name="calendar check",
        categories=("HIPAA:date", "GDPR:personal-data", "CCPA:personal-information"),
    )
)
