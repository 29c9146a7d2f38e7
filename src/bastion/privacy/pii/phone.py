"""Telephone numbers, national (US by default) or international with ``+``: a loose
shape, then ``phonenumbers`` (Google's libphonenumber metadata) decides validity."""

import phonenumbers

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer


def _validate(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return "not a phone number"
    return None if phonenumbers.is_valid_number(number) else "no such number plan"


PHONE = RECOGNIZERS.register("phone")(
    Recognizer(
        entity="PHONE_NUMBER",
        patterns=(
            Pattern(
                name="phone-international",
                regex=r"(?<![\w+])\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}(?![\w-])",
                score=0.7,
            ),
            Pattern(
                name="phone-national",
                regex=r"(?<![\w+.-])(?:1[\s.-])?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])",
                score=0.6,
            ),
        ),
        context=("phone", "tel", "telephone", "call", "mobile", "cell", "fax", "contact"),
        negative_context=("order", "invoice", "ssn", "nhs", "sin", "bsn", "aadhaar", "nir"),
        validate=_validate,
        validator_name="libphonenumber numbering plan",
        categories=("HIPAA:telephone", "GDPR:personal-data", "CCPA:identifier"),
    )
)
