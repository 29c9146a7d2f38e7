"""UK postcodes and Canadian postal codes: fixed formats. A UK postcode must start with
one of Royal Mail's postcode areas (``SW``, ``M``, ``EH``, ...) and end in a digit and two
letters from the inward-code alphabet (no C, I, K, M, O, V); a Canadian one alternates
letter and digit with the letters Canada Post never uses left out."""

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

# Royal Mail postcode areas (geographic ones, plus the Crown dependencies).
_UK_AREAS = frozenset((
    "AB", "AL", "B", "BA", "BB", "BD", "BH", "BL", "BN", "BR", "BS", "BT", "CA", "CB", "CF",
    "CH", "CM", "CO", "CR", "CT", "CV", "CW", "DA", "DD", "DE", "DG", "DH", "DL", "DN", "DT",
    "DY", "E", "EC", "EH", "EN", "EX", "FK", "FY", "G", "GL", "GU", "GY", "HA", "HD", "HG",
    "HP", "HR", "HS", "HU", "HX", "IG", "IM", "IP", "IV", "JE", "KA", "KT", "KW", "KY", "L",
    "LA", "LD", "LE", "LL", "LN", "LS", "LU", "M", "ME", "MK", "ML", "N", "NE", "NG", "NN",
    "NP", "NR", "NW", "OL", "OX", "PA", "PE", "PH", "PL", "PO", "PR", "RG", "RH", "RM", "S",
    "SA", "SE", "SG", "SK", "SL", "SM", "SN", "SO", "SP", "SR", "SS", "ST", "SW", "SY", "TA",
    "TD", "TF", "TN", "TQ", "TR", "TS", "TW", "UB", "W", "WA", "WC", "WD", "WF", "WN", "WR",
    "WS", "WV", "YO", "ZE",
))  # fmt: skip

_UK_OUT = r"[A-Z]{1,2}\d[A-Z\d]?"
_UK_IN = r"\d[ABD-HJLNP-UW-Z]{2}"
_CA_FSA = r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]"
_CA_LDU = r"\d[ABCEGHJ-NPRSTV-Z]\d"


def _validate(value: str) -> str | None:
    if value[1].isdigit() and value[0] in "ABCEGHJKLMNPRSTVXY" and value[2].isalpha():
        return None  # Canadian: letter, digit, letter (the regex checked the rest)
    area = value[:2] if value[1].isalpha() else value[:1]
    return None if area in _UK_AREAS else "not a UK postcode area"


POSTCODE = RECOGNIZERS.register("postcode")(
    Recognizer(
        entity="ZIP_CODE",
        patterns=(
            # Written with the space, both formats are distinctive; run together
            # (``S1E4M3``) they look like any short code, so they need a cue.
            Pattern(name="uk-postcode", regex=rf"\b{_UK_OUT} {_UK_IN}\b", score=0.6),
            Pattern(name="ca-postal-code", regex=rf"\b{_CA_FSA} {_CA_LDU}\b", score=0.6),
            Pattern(name="uk-postcode-compact", regex=rf"\b{_UK_OUT}{_UK_IN}\b", score=0.4),
            Pattern(name="ca-postal-code-compact", regex=rf"\b{_CA_FSA}{_CA_LDU}\b", score=0.4),
        ),
        context=("postcode", "postal", "post", "zip", "address", "code"),
        validate=_validate,
        validator_name="postcode area / postal-code alphabet",
        categories=("HIPAA:geographic", "GDPR:personal-data", "CCPA:personal-information"),
    )
)
