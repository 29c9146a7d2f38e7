"""MAC (EUI-48) addresses: six hex pairs with one consistent separator."""

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer

MAC_ADDRESS = RECOGNIZERS.register("mac-address")(
    Recognizer(
        entity="MAC_ADDRESS",
        patterns=(
            Pattern(
                name="mac",
                regex=r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:-])",
                score=0.75,
            ),
        ),
        context=("mac", "device", "wifi", "ethernet", "hardware"),
        categories=("HIPAA:device-identifier", "GDPR:online-identifier", "CCPA:identifier"),
    )
)
