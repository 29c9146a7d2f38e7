"""Medical record numbers: hospitals format them freely, so the label carries the
evidence (``MRN``, ``medical record``, ``chart``) and the number after it is the span."""

import re

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

MEDICAL_RECORD = RECOGNIZERS.register("medical-record")(
    Recognizer(
        entity="MEDICAL_RECORD_NUMBER",
        patterns=(
            Pattern(
                name="mrn-labelled",
                regex=r"\b(?:MRN|medical record(?: number| no\.?| #)?|chart(?: number| no\.?| #))"
                r"[\s:#.]*((?=[A-Z-]*\d)[A-Z]{0,3}-?\d{5,12})\b",
                score=0.9,
                flags=re.IGNORECASE,
                group=1,
            ),
        ),
        categories=(
            "HIPAA:medical-record-number",
            "GDPR:health-data",
            "CCPA:sensitive-personal-information",
        ),
    )
)
