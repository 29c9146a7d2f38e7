"""UUIDs (RFC 9562), only when asked for: most UUIDs in data are request or row ids, a
hard negative by default, but a user or device id can single a person out."""

import uuid

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer


def _validate(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "not a UUID"
    return None


UUID = RECOGNIZERS.register("uuid")(
    Recognizer(
        entity="UUID",
        patterns=(
            Pattern(
                name="uuid-8-4-4-4-12",
                regex=r"(?<![\w-])[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}(?![\w-])",
                score=0.6,
            ),
        ),
        context=("user", "device", "customer", "account", "member", "uuid"),
        validate=_validate,
        validator_name="UUID syntax",
        categories=("HIPAA:unique-identifier", "GDPR:online-identifier", "CCPA:unique-identifier"),
        opt_in=True,
    )
)
