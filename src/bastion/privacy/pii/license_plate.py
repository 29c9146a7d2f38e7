"""Vehicle licence plates: 5-8 letters and digits (both present), only after a plate label."""

import re

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

LICENSE_PLATE = RECOGNIZERS.register("license-plate")(
    Recognizer(
        entity="LICENSE_PLATE",
        patterns=(
            Pattern(
                name="plate-labelled",
                regex=r"\b(?:licen[cs]e plate|plate|reg(?:istration)?)(?: no\.?| number| #)?"
                r"[\s:#.]*((?=[A-Z -]*\d)(?=[\d -]*[A-Z])[A-Z0-9]{1,4}[ -]?[A-Z0-9]{2,4})\b",
                score=0.85,
                group=1,
                flags=re.IGNORECASE,
            ),
        ),
        categories=("HIPAA:vehicle-identifier", "GDPR:personal-data", "CCPA:identifier"),
    )
)
