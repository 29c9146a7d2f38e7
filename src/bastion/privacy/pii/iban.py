"""International bank account numbers, checked by the ISO 13616 mod-97 checksum and the
country's length (``python-stdnum``)."""

from stdnum import iban

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer


def _validate(value: str) -> str | None:
    return None if iban.is_valid(value) else "fails the IBAN mod-97 check"


IBAN = RECOGNIZERS.register("iban")(
    Recognizer(
        entity="IBAN_CODE",
        patterns=(
            Pattern(
                name="iban",
                regex=r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
                score=0.8,
            ),
        ),
        context=("iban", "bank", "account", "transfer", "sepa"),
        validate=_validate,
        validator_name="IBAN mod-97 check",
        categories=("HIPAA:account-number", "GDPR:financial", "CCPA:financial-account"),
    )
)
