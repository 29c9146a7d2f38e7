"""Health-plan beneficiary and member ids: the Medicare Beneficiary Identifier (CMS's
11-character format, which excludes S, L, O, I, B, Z), and any id after a member or
policy label."""

import re

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

_L = "AC-HJKMNP-RT-Y"

HEALTH_PLAN = RECOGNIZERS.register("health-plan")(
    Recognizer(
        entity="HEALTH_PLAN_ID",
        patterns=(
            Pattern(
                name="medicare-mbi",
                regex=rf"\b[1-9][{_L}][{_L}0-9]\d-?[{_L}][{_L}0-9]\d-?[{_L}]{{2}}\d{{2}}\b",
                score=0.45,
            ),
            Pattern(
                name="member-id-labelled",
                regex=r"\b(?:member|subscriber|beneficiary|policy|insurance|plan|medicaid|medicare)"
                r"(?: id| no\.?| number| #)[\s:#.]*((?=[A-Z-]*\d)[A-Z0-9-]{6,20})\b",
                score=0.85,
                flags=re.IGNORECASE,
                group=1,
            ),
        ),
        context=("medicare", "mbi", "beneficiary", "member", "insurance", "plan", "medicaid"),
        categories=(
            "HIPAA:health-plan-beneficiary-number",
            "GDPR:health-data",
            "CCPA:sensitive-personal-information",
        ),
    )
)
