"""National identity numbers of other countries, each checked by ``python-stdnum``: the
UK NHS number (mod 11), Spanish DNI (check letter), Italian codice fiscale (check letter),
French NIR (mod 97), Indian Aadhaar (Verhoeff), Canadian SIN (Luhn), Dutch BSN (11-proof)."""

from collections.abc import Callable

from stdnum.ca import sin
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

_CHECKS: tuple[Callable[[str], bool], ...] = (
    nhs.is_valid, dni.is_valid, codicefiscale.is_valid, nir.is_valid, aadhaar.is_valid,
    sin.is_valid, bsn.is_valid,
)  # fmt: skip


def _validate(value: str) -> str | None:
    return None if any(check(value) for check in _CHECKS) else "fails every national check"


NATIONAL_ID = RECOGNIZERS.register("national-id")(
    Recognizer(
        entity="NATIONAL_ID",
        patterns=(
            Pattern(name="es-dni", regex=r"\b\d{8}-?[A-Z]\b", score=0.6),
            Pattern(
                name="it-codice-fiscale",
                regex=r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b",
                score=0.85,
            ),
            Pattern(
                name="fr-nir",
                regex=r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b",
                score=0.6,
            ),
            Pattern(
                name="in-aadhaar",
                regex=r"(?<![\w-])(?<!\d )[2-9]\d{3} \d{4} \d{4}(?![\w-]| \d)",
                score=0.5,
            ),
            Pattern(
                name="nhs-or-sin",
                regex=r"(?<![\w-])(?<!\d )\d{3}[ -]\d{3}[ -]\d{3,4}(?![\w-]| \d)",
                score=0.2,
            ),
            Pattern(name="nl-bsn", regex=r"(?<![\w-])\d{9}(?![\w-])", score=0.15),
        ),
        context=(
            "nhs",
            "dni",
            "nif",
            "fiscale",
            "nir",
            "insee",
            "aadhaar",
            "sin",
            "bsn",
            "national",
            "identity",
            "citizen",
        ),
        validate=_validate,
        validator_name="national-id checksum",
        categories=("HIPAA:account-number", "GDPR:national-id", "CCPA:identifier"),
    )
)
