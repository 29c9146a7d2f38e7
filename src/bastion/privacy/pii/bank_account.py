"""Bank account numbers and US routing numbers: accounts are 6-17 digits with no
checksum, so a label must name them; ABA routing numbers carry a 3-7-1 weighted checksum."""

import re

from stdnum.us import rtn

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

BANK_ACCOUNT = RECOGNIZERS.register("bank-account")(
    Recognizer(
        entity="BANK_ACCOUNT",
        patterns=(
            Pattern(
                name="account-labelled",
                regex=r"\b(?:account|acct|a/c)(?: no\.?| number| #)?[\s:#.]*(\d{6,17})\b",
                score=0.85,
                flags=re.IGNORECASE,
                group=1,
            ),
        ),
        negative_context=("order", "invoice"),
        categories=("HIPAA:account-number", "GDPR:financial", "CCPA:financial-account"),
    )
)


def _routing(value: str) -> str | None:
    return None if rtn.is_valid(value) else "fails the ABA routing checksum"


ROUTING_NUMBER = RECOGNIZERS.register("us-routing-number")(
    Recognizer(
        entity="BANK_ACCOUNT",
        patterns=(Pattern(name="aba-routing", regex=r"(?<![\w-])[0-3]\d{8}(?![\w-])", score=0.2),),
        context=("routing", "aba", "rtn", "transit", "bank"),
        validate=_routing,
        validator_name="ABA routing checksum",
        categories=("HIPAA:account-number", "GDPR:financial", "CCPA:financial-account"),
    )
)
