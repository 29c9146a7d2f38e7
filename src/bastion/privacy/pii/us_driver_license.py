"""US driver's licence numbers: every state has its own format (1-2 letters and 4-14
digits cover them), so only a licence label next to the number makes it one."""

import re

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

US_DRIVER_LICENSE = RECOGNIZERS.register("us-driver-license")(
    Recognizer(
        entity="US_DRIVER_LICENSE",
        patterns=(
            Pattern(
                name="dl-labelled",
                regex=r"\b(?:driver'?s? licen[cs]e|DL|DLN|licen[cs]e (?:no\.?|number|#))[\s:#.]*"
                r"((?=[A-Z]{0,2}\d)[A-Z]{0,2}\d{4,14})\b",
                score=0.85,
                flags=re.IGNORECASE,
                group=1,
            ),
        ),
        categories=("HIPAA:certificate-license-number", "GDPR:national-id", "CCPA:identifier"),
    )
)
