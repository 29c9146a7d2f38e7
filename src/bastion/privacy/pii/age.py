"""Ages over 89, which HIPAA Safe Harbor counts as identifying (few people are that old);
younger ages are not flagged."""

import re

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer


def _validate(value: str) -> str | None:
    return None if 90 <= int(value) <= 125 else "age under 90 (or not a human age)"


AGE_OVER_89 = RECOGNIZERS.register("age-over-89")(
    Recognizer(
        entity="AGE_OVER_89",
        patterns=(
            Pattern(
                name="age-years-old",
                regex=r"\b(\d{2,3})[- ](?:year|yr)s?[- ]old\b",
                score=0.85,
                flags=re.IGNORECASE,
                group=1,
            ),
            Pattern(
                name="age-labelled",
                regex=r"\b(?:age[ds]?|aged)[\s:]+(\d{2,3})\b",
                score=0.85,
                flags=re.IGNORECASE,
                group=1,
            ),
            Pattern(
                name="age-yo",
                regex=r"\b(\d{2,3}) ?(?:y/?o|yo)\b",
                score=0.8,
                flags=re.IGNORECASE,
                group=1,
            ),
        ),
        validate=_validate,
        validator_name="age of 90 or more",
        categories=("HIPAA:age-over-89", "GDPR:personal-data", "CCPA:personal-information"),
    )
)
