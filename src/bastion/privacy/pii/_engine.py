"""The one engine every PII recognizer runs on.

A recognizer is data plus a hook (Presidio's idea): regular expressions with a base
score, context words that raise the score when they appear shortly before the match,
negative context words that lower it, and an optional ``validate`` function (a checksum,
an invalid-range rule, a dictionary look-up) that rejects a candidate outright. Every
detection carries an ``explanation`` saying which pattern fired, whether the validator
passed, and which context word moved the score, so a user can see why a span was flagged.

Context is read only inside the match's own sentence: in "SSN 123-45-6789 is on file.
Sister reachable on 0114 496 0759" the word "SSN" says nothing about the phone number.

Overlapping detections are resolved by score, then by length: the strongest wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bastion.registry import Registry

__all__ = [
    "RECOGNIZERS",
    "Detection",
    "Pattern",
    "Recognizer",
    "analyze",
    "entity_types",
    "luhn_ok",
    "mask",
    "only_digits",
]

#: How many characters before a match are searched for context words.
CONTEXT_WINDOW = 48
#: Score added by a context word, removed by a negative one.
CONTEXT_BOOST = 0.35
NEGATIVE_PENALTY = 0.5

_WORD = re.compile(r"[a-z0-9#]+")
# A sentence ends at . ! ? or ; followed by space and a capital, unless the word before
# the stop is an abbreviation or an initial ("Dr. Okonkwo", "J. Smith", "no. 123").
_BOUNDARY = re.compile(r"(\w*)[.!?;]\s+(?=[A-Z])")
_ABBREVIATIONS = frozenset(
    {"dr", "mr", "mrs", "ms", "mx", "prof", "st", "jr", "sr", "no", "nr", "vs", "tel", "ref"}
)


@dataclass(frozen=True, kw_only=True)
class Pattern:
    """One regular expression with the score a bare match gets before context."""

    name: str
    regex: str
    score: float
    flags: int = 0
    group: int = 0

    def compiled(self) -> re.Pattern[str]:
        return _compile(self.regex, self.flags)


_CACHE: dict[tuple[str, int], re.Pattern[str]] = {}


def _compile(regex: str, flags: int) -> re.Pattern[str]:
    key = (regex, flags)
    if key not in _CACHE:
        _CACHE[key] = re.compile(regex, flags)
    return _CACHE[key]


@dataclass(frozen=True, kw_only=True)
class Recognizer:
    """Patterns, context words and a validator for one entity type.

    ``validate`` gets the matched text and returns ``None`` to accept it, or a short
    reason to reject it ("fails Luhn"). A pattern too generic on its own (a bare 8-digit
    number) gets a base score below the default threshold, so only a context word nearby
    lets it through. ``categories`` names the regulation categories the entity falls under.
    An ``opt_in`` recognizer (UUIDs) runs only when its entity is asked for by name.
    """

    entity: str
    patterns: tuple[Pattern, ...]
    context: tuple[str, ...] = ()
    negative_context: tuple[str, ...] = ()
    validate: Callable[[str], str | None] | None = None
    validator_name: str = ""
    categories: tuple[str, ...] = ()
    opt_in: bool = False

    def find(self, text: str, lowered: str | None = None) -> list[Detection]:
        """Every span of ``text`` this recognizer accepts, with its score and why."""
        low = text.lower() if lowered is None else lowered
        out: list[Detection] = []
        for pattern in self.patterns:
            for match in pattern.compiled().finditer(text):
                start, end = match.span(pattern.group)
                if start == end:
                    continue
                detection = self._judge(text, low, start, end, pattern)
                if detection is not None:
                    out.append(detection)
        return out

    def _judge(
        self, text: str, low: str, start: int, end: int, pattern: Pattern
    ) -> Detection | None:
        value = text[start:end]
        reasons = [f"pattern {pattern.name!r} matched"]
        if self.validate is not None:
            rejected = self.validate(value)
            if rejected is not None:
                return None
            reasons.append(f"{self.validator_name or 'validator'} passed")
        lo = _sentence_start(text, max(0, start - CONTEXT_WINDOW), start)
        hit, hit_at = _nearest(low, lo, start, self.context)
        miss, miss_at = _nearest(low, lo, start, self.negative_context)
        score = pattern.score
        # The cue nearest the match decides: "NHS number" right before a number
        # outweighs "phone" earlier in the sentence, and the other way round.
        if hit is not None and hit_at >= miss_at:
            score += CONTEXT_BOOST
            reasons.append(f"context word {hit!r} nearby")
        elif miss is not None:
            score -= NEGATIVE_PENALTY
            reasons.append(f"negative context {miss!r} nearby")
        score = min(1.0, score)
        if score <= 0.0:
            return None
        return Detection(
            entity=self.entity,
            start=start,
            end=end,
            score=round(score, 3),
            explanation="; ".join(reasons),
        )


def _sentence_start(text: str, lo: int, hi: int) -> int:
    """Where the sentence holding ``text[hi]`` starts, searching no further back than ``lo``."""
    at = lo
    for m in _BOUNDARY.finditer(text, lo, hi):
        word = m.group(1).lower()
        if len(word) > 1 and word not in _ABBREVIATIONS:
            at = m.end()
    return at


def _nearest(low: str, lo: int, hi: int, words: tuple[str, ...]) -> tuple[str | None, int]:
    """The word of ``words`` that ends closest before ``hi`` (within ``low[lo:hi]``)."""
    best: tuple[str | None, int] = (None, -1)
    if not words:
        return best
    for m in _WORD.finditer(low, lo, hi):
        token = m.group(0)
        if token in words:
            best = (token, m.start())
    for phrase in (w for w in words if " " in w):
        at = low.rfind(phrase, lo, hi)
        if at > best[1]:
            best = (phrase, at)
    return best


@dataclass(frozen=True, kw_only=True, order=True)
class Detection:
    """One flagged span: ``text[start:end]`` is an ``entity`` with ``score`` in (0, 1]."""

    start: int
    end: int
    entity: str
    score: float
    explanation: str = field(compare=False)

    def overlaps(self, other: Detection) -> bool:
        return self.start < other.end and other.start < self.end


RECOGNIZERS: Registry[Recognizer] = Registry("PII recognizer", packages=("bastion.privacy.pii",))


def analyze(
    text: str,
    *,
    entities: Iterable[str] | None = None,
    recognizers: Sequence[Recognizer] | None = None,
    threshold: float = 0.5,
    opt_in: Iterable[str] = (),
) -> list[Detection]:
    """Detections in ``text`` scoring at least ``threshold``, overlaps resolved, in order.

    ``entities`` restricts the search to those entity types (opt-in ones included);
    otherwise every default recognizer runs, plus the opt-in ones whose entity is in
    ``opt_in``. ``recognizers`` replaces the registered set (to add a custom recognizer,
    pass the registered ones plus yours).
    """
    active = list(recognizers) if recognizers is not None else [r for _, r in RECOGNIZERS.items()]
    if entities is not None:
        wanted = set(entities)
        active = [r for r in active if r.entity in wanted]
    else:
        extra = set(opt_in)
        active = [r for r in active if not r.opt_in or r.entity in extra]
    low = text.lower()
    found = [d for r in active for d in r.find(text, low) if d.score >= threshold]
    return _resolve(found)


def entity_types() -> list[str]:
    """Every entity type a registered recognizer reports, sorted."""
    return sorted({r.entity for _, r in RECOGNIZERS.items()})


def _resolve(found: list[Detection]) -> list[Detection]:
    """Keep the strongest of overlapping detections (score, then length, then position)."""
    kept: list[Detection] = []
    for det in sorted(found, key=lambda d: (-d.score, -(d.end - d.start), d.start, d.entity)):
        if not any(det.overlaps(k) for k in kept):
            kept.append(det)
    return sorted(kept)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment cards and IMEIs."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def only_digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def mask(value: str, keep: int = 0) -> str:
    """``value`` with every letter and digit but the last ``keep`` replaced by ``*``.

    Separators stay, so a masked example still shows the shape (``***-**-6789``).
    """
    kept = 0
    out = []
    for ch in reversed(value):
        if ch.isalnum():
            if kept < keep:
                kept += 1
                out.append(ch)
            else:
                out.append("*")
        else:
            out.append(ch)
    return "".join(reversed(out))
