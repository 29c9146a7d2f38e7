"""PII detection: recognizers (patterns + context + a validator) and the engine that runs them.

Each recognizer lives in its own module and registers in :data:`RECOGNIZERS`::

    from bastion.privacy.pii import analyze
    for d in analyze("Call 212-555-0187 about MRN 00482913"):
        print(d.entity, d.start, d.end, d.score, d.explanation)
"""

from bastion.privacy.pii._engine import (
    RECOGNIZERS,
    Detection,
    Pattern,
    Recognizer,
    analyze,
    entity_types,
    mask,
)

__all__ = [
    "RECOGNIZERS",
    "Detection",
    "Pattern",
    "Recognizer",
    "analyze",
    "entity_types",
    "mask",
]
