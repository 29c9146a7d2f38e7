"""Device IMEIs: 15 digits (optionally grouped 2-6-6-1) with a Luhn check digit. A bare
15-digit Luhn number is common by chance, so it needs a word such as ``imei`` nearby."""

from stdnum import imei

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer


def _validate(value: str) -> str | None:
    return None if imei.is_valid(value) else "fails the IMEI Luhn check"


IMEI = RECOGNIZERS.register("imei")(
    Recognizer(
        entity="IMEI",
        patterns=(
            Pattern(
                name="imei-grouped", regex=r"(?<![\w-])\d{2}-\d{6}-\d{6}-\d(?![\w-])", score=0.6
            ),
            Pattern(name="imei-bare", regex=r"(?<![\w-])\d{15}(?![\w-])", score=0.3),
        ),
        context=("imei", "device", "handset", "phone", "serial"),
        validate=_validate,
        validator_name="IMEI Luhn check",
        categories=("HIPAA:device-identifier", "GDPR:online-identifier", "CCPA:identifier"),
    )
)
