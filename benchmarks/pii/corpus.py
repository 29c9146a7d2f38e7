"""A labelled PII corpus, deterministic from a seed: clinical-style notes with gold spans
of every entity type bastion knows, hard-negative sentences (no spans), and a table with
per-cell truth.

Values come from Faker (seeded) and are made valid with the same standards the
recognizers check (Luhn, mod-97, VIN check digit, NHS mod 11, SSA ranges), so a miss
is a detector's miss, not a bad label. Person names are drawn half from Faker's en_US
lists (which bastion's dictionary also comes from) and half from its en_GB, de_DE and
fr_FR lists (one sentence also it_IT and es_ES), so the name score is not only a
dictionary look-up of its own source.
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from dataclasses import dataclass, field

import phonenumbers
from faker import Faker
from stdnum import luhn
from stdnum.gb import nhs

ENTITIES = (
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE",
    "IP_ADDRESS", "MAC_ADDRESS", "URL", "DATE_TIME", "STREET_ADDRESS", "ZIP_CODE",
    "LOCATION", "MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID", "AGE_OVER_89",
    "US_DRIVER_LICENSE", "PASSPORT", "VIN", "IMEI", "BANK_ACCOUNT", "LICENSE_PLATE",
    "NATIONAL_ID",
)  # fmt: skip


@dataclass
class Note:
    text: str = ""
    spans: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, *parts: str | tuple[str, str]) -> None:
        """Append literal text and (value, entity) slots, recording slot offsets."""
        for part in parts:
            if isinstance(part, tuple):
                value, entity = part
                self.spans.append((len(self.text), len(self.text) + len(value), entity))
                self.text += value
            else:
                self.text += part


def _luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def _vin(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    values = dict(zip("0123456789", range(10), strict=True)) | dict(
        zip(
            "ABCDEFGHJKLMNPRSTUVWXYZ",
            (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
            strict=True,
        )
    )
    weights = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
    while True:
        vin = list("1" + "".join(rng.choice(letters) for _ in range(16)))
        total = sum(values[c] * w for c, w in zip(vin, weights, strict=True)) % 11
        vin[8] = "X" if total == 10 else str(total)
        if any(c.isalpha() for c in vin):
            return "".join(vin)


def _mbi(rng: random.Random) -> str:
    alpha = "ACDEFGHJKMNPQRTUVWXY"
    an = alpha + string.digits
    d = string.digits
    c = [rng.choice("123456789"), rng.choice(alpha), rng.choice(an), rng.choice(d),
         rng.choice(alpha), rng.choice(an), rng.choice(d), rng.choice(alpha), rng.choice(alpha),
         rng.choice(d), rng.choice(d)]  # fmt: skip
    s = "".join(c)
    return f"{s[:4]}-{s[4:7]}-{s[7:]}"


def _nhs(rng: random.Random) -> str:
    while True:
        body = "".join(rng.choice(string.digits) for _ in range(9))
        for check in string.digits:
            if nhs.is_valid(body + check):
                n = body + check
                return f"{n[:3]} {n[3:6]} {n[6:]}"


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _failing_luhn(rng: random.Random) -> str:
    while True:
        digits = "4" + "".join(rng.choice(string.digits) for _ in range(15))
        if not luhn.is_valid(digits):
            return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


class Corpus:
    """``notes`` (Note objects) and ``table`` (header, rows, per-cell entity or None)."""

    def __init__(self, seed: int = 0, n_notes: int = 400, n_rows: int = 2000) -> None:
        self.rng = random.Random(seed)
        self.fakers = {
            loc: Faker(loc)
            for loc in ("en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES", "en_AU")
        }
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed + i)
        self.us = self.fakers["en_US"]
        self.notes = [self._note() for _ in range(n_notes)]
        self.header, self.rows, self.truth = self._table(n_rows)

    def _name(self) -> str:
        loc = "en_US" if self.rng.random() < 0.5 else self.rng.choice(["en_GB", "de_DE", "fr_FR"])
        f = self.fakers[loc]
        return f"{f.first_name()} {f.last_name()}"

    def _any_name(self) -> str:
        f = self.fakers[self.rng.choice(["en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES"])]
        return f"{f.first_name()} {f.last_name()}"

    def _phone(self) -> str:
        area = self.rng.choice([212, 415, 312, 617, 303, 206, 512, 404, 713, 202])
        exch = self.rng.randint(200, 989)
        line = self.rng.randint(1000, 9999)
        return self.rng.choice([f"({area}) {exch}-{line}", f"{area}-{exch}-{line}",
                                f"{area}.{exch}.{line}", f"+1 {area} {exch} {line}"])  # fmt: skip

    def _foreign_phone(self, locale: str) -> str:
        """A Faker number of ``locale`` that libphonenumber calls valid in that country.
        Faker's en_GB formats also yield Ofcom's drama ranges (``01632 960xxx``,
        ``0115 496 0xxx``: reserved for fiction, never assigned to anyone) and 10-digit
        ``029``/``028`` numbers one digit short of dialable; neither reaches a person, so
        neither is labelled a phone. The same rule holds for every locale."""
        region = locale.split("_")[1]
        while True:
            value = self.fakers[locale].phone_number()
            try:
                number = phonenumbers.parse(value, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return value

    def _date(self) -> str:
        d = self.us.date_of_birth(minimum_age=1, maximum_age=95)
        return self.rng.choice([d.strftime("%m/%d/%Y"), d.isoformat(), d.strftime("%B %d, %Y"),
                                d.strftime("%d %b %Y")])  # fmt: skip

    def _sentences(self) -> list[list[str | tuple[str, str]]]:
        r, us = self.rng, self.us
        card = _luhn_complete(r, "4", 16)
        return [
            [
                "Patient ",
                (self._name(), "PERSON"),
                " (DOB ",
                (self._date(), "DATE_TIME"),
                ") was seen today. ",
            ],
            [
                "Contact email ",
                (us.email(), "EMAIL_ADDRESS"),
                ", phone ",
                (self._phone(), "PHONE_NUMBER"),
                ". ",
            ],
            ["SSN ", (_ssn(r), "US_SSN"), " is on file. "],
            [
                "Card ",
                (" ".join(card[i : i + 4] for i in range(0, 16, 4)), "CREDIT_CARD"),
                " was charged. ",
            ],
            ["Refund to IBAN ", (us.iban(), "IBAN_CODE"), ". "],
            [
                "Portal login from ",
                (us.ipv4_public(), "IP_ADDRESS"),
                " and ",
                (us.ipv6(), "IP_ADDRESS"),
                ". ",
            ],
            [
                "Device MAC ",
                (us.mac_address().upper(), "MAC_ADDRESS"),
                ", IMEI ",
                (_luhn_complete(r, "35", 15), "IMEI"),
                ". ",
            ],
            ["Shared profile at ", (us.url() + us.user_name(), "URL"), " yesterday. "],
            [
                "Lives at ",
                (
                    f"{r.randint(1, 9999)} {us.last_name()} "
                    f"{r.choice(['Street', 'Avenue', 'Road', 'Lane', 'Drive'])}",
                    "STREET_ADDRESS",
                ),
                ", ",
                (us.city(), "LOCATION"),
                ", ",
                us.state_abbr(include_territories=False),
                " ",
                (us.zipcode(), "ZIP_CODE"),
                ". ",
            ],
            ["MRN: ", (str(r.randint(10**6, 10**8)), "MEDICAL_RECORD_NUMBER"), ". "],
            ["Medicare MBI ", (_mbi(r), "HEALTH_PLAN_ID"), " verified. "],
            ["A ", (str(r.randint(90, 104)), "AGE_OVER_89"), "-year-old with a fall. "],
            [
                "Driver's license ",
                (
                    r.choice(string.ascii_uppercase) + str(r.randint(10**6, 10**8)),
                    "US_DRIVER_LICENSE",
                ),
                ". ",
            ],
            ["Passport number ", (str(r.randint(10**8, 10**9 - 1)), "PASSPORT"), ". "],
            ["Vehicle VIN ", (_vin(r), "VIN"), " towed. "],
            ["Account number ", (str(r.randint(10**7, 10**12)), "BANK_ACCOUNT"), ". "],
            [
                "License plate ",
                (
                    f"{r.randint(1, 9)}{''.join(r.choices(string.ascii_uppercase, k=3))}"
                    f"{r.randint(100, 999)}",
                    "LICENSE_PLATE",
                ),
                ". ",
            ],
            ["NHS number ", (_nhs(r), "NATIONAL_ID"), ". "],
            ["Moved from ", (us.state(), "LOCATION"), " in ", str(r.randint(1990, 2020)), ". "],
            # Harder forms: a name in running text with no label, a foreign number, a
            # country without a cue word.
            ["Spoke with ", (self._name(), "PERSON"), " about the results. "],
            ["Sister reachable on ", (self._foreign_phone("en_GB"), "PHONE_NUMBER"), ". "],
            ["Travelled to ", (self.fakers["en_GB"].country(), "LOCATION"), " last spring. "],
            # Added with the second round of recognizer work: a name with no cue word
            # before it (any of six locales), and numbers written the way Germany, France
            # and Australia write them, with no phone word nearby.
            ["Results sent to ", (self._any_name(), "PERSON"), " by post. "],
            [
                "Office line in ",
                (r.choice(["Munich", "Lyon", "Perth"]), "LOCATION"),
                ": ",
                (self._foreign_phone(r.choice(["de_DE", "fr_FR", "en_AU"])), "PHONE_NUMBER"),
                ". ",
            ],
        ]

    def _negatives(self) -> list[str]:
        r = self.rng
        return [
            f"BP {r.randint(100, 160)}/{r.randint(60, 95)} mmHg at "
            f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}. ",
            f"Order {_failing_luhn(r)} shipped. ",
            f"Running version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}. ",
            f"Commit {hashlib.sha1(str(r.random()).encode()).hexdigest()}. ",
            f"Request id {uuid.UUID(int=r.getrandbits(128))}. ",
            f"HbA1c {r.randint(50, 99) / 10}%, glucose {r.randint(40, 120) / 10} mmol/L. ",
            f"Dx {r.choice(['E11.9', 'I10', 'J45.909', 'M54.5', 'K21.9'])}. ",
            f"A {r.randint(20, 89)}-year-old seen at "
            f"{r.randint(1, 12)}:{r.randint(0, 59):02d} pm. ",
            f"Invoice {r.randint(10**5, 10**6)} for {r.randint(2, 40)} units. ",
        ]

    def _note(self) -> Note:
        note = Note()
        chosen = self.rng.sample(self._sentences(), k=5)
        negatives = self.rng.sample(self._negatives(), k=2)
        for sentence in chosen:
            note.add(*sentence)
        for neg in negatives:
            note.add(neg)
        note.text = note.text.rstrip()
        return note

    def _table(self, n: int) -> tuple[list[str], list[list[str]], list[list[str | None]]]:
        header = ["patient_id", "name", "email", "phone", "ssn", "dob", "zip", "systolic",
                  "diagnosis", "visit_time"]  # fmt: skip
        truth_row: list[str | None] = [None, "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN",
                                       "DATE_TIME", "ZIP_CODE", None, None, None]  # fmt: skip
        rows, truth = [], []
        for i in range(n):
            rows.append([
                str(100000 + i), self._name(), self.us.email(), self._phone(), _ssn(self.rng),
                self.us.date_of_birth().isoformat(), self.us.zipcode(),
                str(self.rng.randint(95, 170)), self.rng.choice(["E11.9", "I10", "J45.909"]),
                f"{self.rng.randint(7, 18):02d}:{self.rng.randint(0, 59):02d}",
            ])  # fmt: skip
            truth.append(list(truth_row))
        return header, rows, truth
