"""Payment card numbers: 13-19 digits (spaces or dashes allowed) with a known issuer
prefix and a valid Luhn check digit; card-like numbers that fail Luhn never fire."""

import re

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer, luhn_ok, only_digits

# Issuer prefixes (IIN ranges) and the lengths each issues: Visa, Mastercard, Amex,
# Discover, Diners, JCB, UnionPay, Maestro.
_ISSUER = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]|[3-6]\d|7[01])\d{13}|2720\d{12}"
    r"|3[47]\d{13}|6(?:011|5\d\d)\d{12,15}|64[4-9]\d{13,16}|3(?:0[0-5]|[689]\d)\d{11,16}"
    r"|35(?:2[89]|[3-8]\d)\d{12,15}|62\d{14,17}|(?:5[06-9]|6\d)\d{10,17})$"
)


def _validate(value: str) -> str | None:
    digits = only_digits(value)
    if not _ISSUER.match(digits):
        return "no card issuer uses this prefix and length"
    return None if luhn_ok(digits) else "fails the Luhn check"


CREDIT_CARD = RECOGNIZERS.register("credit-card")(
    Recognizer(
        entity="CREDIT_CARD",
        patterns=(
            Pattern(
                name="card-grouped",
                regex=r"(?<![\w-])\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}(?![\w-])",
                score=0.7,
            ),
            Pattern(
                name="card-amex",
                regex=r"(?<![\w-])3[47]\d{2}[ -]\d{6}[ -]\d{5}(?![\w-])",
                score=0.7,
            ),
        ),
        context=("card", "credit", "visa", "mastercard", "amex", "cc", "payment", "debit"),
        negative_context=("order", "invoice", "tracking", "isbn"),
        validate=_validate,
        validator_name="issuer prefix and Luhn check",
        categories=("HIPAA:account-number", "GDPR:financial", "CCPA:financial-account"),
    )
)
