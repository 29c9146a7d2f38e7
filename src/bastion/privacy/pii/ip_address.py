"""IPv4 and IPv6 addresses, validated by the standard library's ``ipaddress``; a dotted
quad right after a letter or a dot (``v1.2.3.4``, ``1.2.3.4.5``) is a version string."""

import ipaddress

from bastion.privacy.pii._engine import RECOGNIZERS, Pattern, Recognizer


def _validate(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "not an IP address"
    return None


IP_ADDRESS = RECOGNIZERS.register("ip-address")(
    Recognizer(
        entity="IP_ADDRESS",
        patterns=(
            Pattern(
                name="ipv4",
                regex=r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)",
                score=0.6,
            ),
            Pattern(
                name="ipv6",
                regex=r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::[0-9A-Fa-f]{1,4}){1,7}|[0-9A-Fa-f]{1,4})(?![\w:])",
                score=0.7,
            ),
        ),
        context=("ip", "address", "host", "client", "server", "login", "from"),
        negative_context=("version", "release", "build", "ver"),
        validate=_validate,
        validator_name="ipaddress parser",
        categories=("HIPAA:ip-address", "GDPR:online-identifier", "CCPA:identifier"),
    )
)
