"""Street addresses: a house number, one to three capitalised words and a street suffix
(USPS Publication 28 common suffixes), with an optional unit."""

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

_SUFFIX = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    "|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Loop|Alley"
)

STREET_ADDRESS = RECOGNIZERS.register("street-address")(
    Recognizer(
        entity="STREET_ADDRESS",
        patterns=(
            Pattern(
                name="street",
                regex=rf"\b\d{{1,6}}(?: [NSEW]\.?)? (?:[A-Z][a-z]+ ){{1,3}}(?:{_SUFFIX})\.?"
                r"(?:,? (?:Apt|Suite|Ste|Unit)\.? ?#?\w+)?(?![\w])",
                score=0.8,
            ),
        ),
        context=("address", "lives", "resides", "street", "home"),
        categories=("HIPAA:geographic", "GDPR:personal-data", "CCPA:identifier"),
    )
)
