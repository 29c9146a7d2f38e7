"""US ZIP codes: after a state abbreviation (``IL 62704``) they are certain; a bare
five-digit number fires only next to a word such as ``zip``."""

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV"
    "|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI|AS|MP|FM|MH|PW|AA|AE|AP"
)

ZIP_CODE = RECOGNIZERS.register("zip-code")(
    Recognizer(
        entity="ZIP_CODE",
        patterns=(
            Pattern(
                name="zip-after-state",
                regex=rf"\b(?:{STATES}),?\s+(\d{{5}}(?:-\d{{4}})?)(?![\w-])",
                score=0.85,
                group=1,
            ),
            Pattern(name="zip-bare", regex=r"(?<![\w.-])\d{5}(?:-\d{4})?(?![\w-]|\.\d)", score=0.2),
        ),
        context=("zip", "zipcode", "postal", "postcode", "zip code"),
        categories=("HIPAA:geographic", "GDPR:personal-data", "CCPA:personal-information"),
    )
)
