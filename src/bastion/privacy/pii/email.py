"""E-mail addresses: local part, ``@``, a dotted domain with a letter-only top level."""

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

EMAIL = RECOGNIZERS.register("email")(
    Recognizer(
        entity="EMAIL_ADDRESS",
        patterns=(
            Pattern(
                name="email",
                regex=r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b",
                score=0.95,
            ),
        ),
        context=("email", "e-mail", "mail", "contact"),
        categories=("HIPAA:email", "GDPR:personal-data", "CCPA:identifier"),
    )
)
