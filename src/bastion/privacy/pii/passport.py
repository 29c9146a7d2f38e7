"""Passport numbers: formats differ by country (US: 9 digits or a letter and 8 digits),
so the word ``passport`` before the number is what makes it one."""

import re

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

PASSPORT = RECOGNIZERS.register("passport")(
    Recognizer(
        entity="PASSPORT",
        patterns=(
            Pattern(
                name="passport-labelled",
                regex=r"\bpassport(?: no\.?| number| #| id)?[\s:#.]*"
                r"((?=[A-Z]{0,2}\d)[A-Z]{0,2}\d{6,9})\b",
                score=0.9,
                flags=re.IGNORECASE,
                group=1,
            ),
        ),
        categories=("HIPAA:certificate-license-number", "GDPR:national-id", "CCPA:identifier"),
    )
)
