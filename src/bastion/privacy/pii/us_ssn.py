"""US Social Security numbers, rejecting the ranges the SSA never issues (area 000, 666
and 900-999, group 00, serial 0000) and the numbers famous from advertising."""

from stdnum.us import ssn

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer


def _validate(value: str) -> str | None:
    return None if ssn.is_valid(value) else "in a range the SSA never issues"


US_SSN = RECOGNIZERS.register("us-ssn")(
    Recognizer(
        entity="US_SSN",
        patterns=(
            Pattern(name="ssn-dashed", regex=r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])", score=0.6),
            Pattern(name="ssn-spaced", regex=r"(?<![\w-])\d{3} \d{2} \d{4}(?![\w-])", score=0.4),
            Pattern(name="ssn-bare", regex=r"(?<![\w-])\d{9}(?![\w-])", score=0.2),
        ),
        context=("ssn", "social security", "social", "ss#", "ssa", "taxpayer"),
        negative_context=("order", "invoice", "tracking", "phone", "tel"),
        validate=_validate,
        validator_name="SSA issuance ranges",
        categories=("HIPAA:ssn", "GDPR:national-id", "CCPA:identifier"),
    )
)
