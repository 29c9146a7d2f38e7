"""Vehicle identification numbers: 17 characters without I, O or Q, with the ISO 3779 /
49 CFR 565 check digit in position 9 (North American VINs carry it)."""

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

_VALUES = dict(zip("0123456789", range(10), strict=True)) | dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
        strict=True,
    )
)
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def _validate(value: str) -> str | None:
    vin = value.upper()
    if vin.isdigit() or vin.isalpha():
        return "a VIN mixes letters and digits"
    total = sum(_VALUES[ch] * w for ch, w in zip(vin, _WEIGHTS, strict=True)) % 11
    return None if vin[8] == ("X" if total == 10 else str(total)) else "fails the check digit"


VIN = RECOGNIZERS.register("vin")(
    Recognizer(
        entity="VIN",
        patterns=(Pattern(name="vin", regex=r"\b[A-HJ-NPR-Z0-9]{17}\b", score=0.75),),
        context=("vin", "vehicle", "chassis", "car"),
        validate=_validate,
        validator_name="VIN check digit",
        categories=("HIPAA:vehicle-identifier", "GDPR:personal-data", "CCPA:identifier"),
    )
)
