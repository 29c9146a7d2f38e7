"""Web addresses with a scheme or a ``www.`` prefix; trailing punctuation is not part of it."""

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

URL = RECOGNIZERS.register("url")(
    Recognizer(
        entity="URL",
        patterns=(
            Pattern(
                name="url",
                regex=r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]",
                score=0.6,
            ),
        ),
        context=("url", "link", "website", "site", "profile", "homepage"),
        categories=("HIPAA:url", "GDPR:online-identifier", "CCPA:identifier"),
    )
)
