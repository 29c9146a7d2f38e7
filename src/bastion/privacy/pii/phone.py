"""Telephone numbers, national (US by default) or international with ``+``: a loose
shape, then ``phonenumbers`` (Google's libphonenumber metadata) decides validity.

A regex finds candidates and libphonenumber judges them, rather than running
``PhoneNumberMatcher`` once per region: on the benchmark notes the matcher over these
seven regions takes 17 times the CPU time, and the table throughput target needs the
cheap pre-filter.

A bare run of 10-11 digits with a trunk ``0`` (``01144960759``) is where the validator
helps least: 99 % of random zero-led 10-digit strings are valid in France or Germany. It
is still read as a phone number (just at the threshold), because unformatted numbers are
common in exports and a missed phone number leaks while an over-redacted id does not;
a word in the same sentence that introduces another kind of number (``order``, ``ref``,
``account``) silences it."""

import re
from functools import lru_cache

import phonenumbers

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

# Regions tried for a number written without a country code, in order; a national
# number valid in any of them counts (Presidio's phone recognizer does the same).
REGIONS = ("US", "GB", "DE", "FR", "CA", "AU", "IN")
_TRUNK_ZERO = tuple(r for r in REGIONS if r not in ("US", "CA"))

_CUES = (
    "phone", "tel", "telephone", "call", "mobile", "cell", "fax", "contact", "reachable",
    "ring", "dial", "landline", "whatsapp", "sms",
)  # fmt: skip
# Words that introduce some other number of the same shape.
_OTHER_NUMBERS = (
    "order", "invoice", "ssn", "nhs", "sin", "bsn", "aadhaar", "nir", "account", "acct",
    "routing", "mrn", "passport", "batch", "tracking", "id", "ref", "reference", "serial",
    "case", "claim", "ticket", "customer",
)  # fmt: skip


# Layouts that belong to other identifiers, however valid the digits are as a phone
# number somewhere: the US SSN (078-12-3456) and day-month-year dates (03.04.2021).
_OTHER_LAYOUTS = re.compile(r"\d{3}-\d{2}-\d{4}|\d{2}([./-])\d{2}\1\d{4}")


@lru_cache(maxsize=8192)
def _validate(value: str) -> str | None:
    if _OTHER_LAYOUTS.fullmatch(value):
        return "an SSN or date layout"
    if value.startswith("+"):
        regions: tuple[str, ...] = ("ZZ",)  # the country code says where
    elif value.lstrip("(").startswith("0"):
        regions = _TRUNK_ZERO  # the NANP has no trunk 0: skip US and CA
    else:
        regions = REGIONS
    for region in regions:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            return "not a phone number"
        if phonenumbers.is_valid_number(number):
            return None
    return "no such number plan"


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
            Pattern(
                name="phone-trunk-digits",
                regex=r"(?<![\w+.-])0[1-9]\d{8,9}(?![\w-]|\.\d)",
                score=0.5,
            ),
            Pattern(
                name="phone-trunk-prefix",
                # (0118) 496 0217, 0161 496 0123, (03) 3788 7623, 05 45 23 28 60, (02328) 60129
                regex=r"(?<![\w+.-])(?:\(0\d{1,4}\)[\s.-]?|0\d{1,4}[\s.-])\d{2,4}"
                r"(?:[\s.-]?\d{2,4}){0,4}(?![\w-]|\.\d)",
                score=0.6,
            ),
        ),
        context=_CUES,
        negative_context=_OTHER_NUMBERS,
        validate=_validate,
        validator_name="libphonenumber numbering plan (US, GB, DE, FR, CA, AU, IN)",
        categories=("HIPAA:telephone", "GDPR:personal-data", "CCPA:identifier"),
    )
)
