"""Every recognizer on text with known ground truth: positives must fire on exactly the
labelled span, hard negatives (look-alikes) must not fire at all."""

from __future__ import annotations

import pytest

from bastion.privacy.pii import RECOGNIZERS, analyze

# (text, entity, the exact span that must be found)
POSITIVES = [
    ("write to jane.doe+ml@example.co.uk today", "EMAIL_ADDRESS", "jane.doe+ml@example.co.uk"),
    ("card 4111 1111 1111 1111 on file", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("mc 5555-5555-5555-4444 exp 09/27", "CREDIT_CARD", "5555-5555-5555-4444"),
    ("amex 3782 822463 10005", "CREDIT_CARD", "3782 822463 10005"),
    ("SSN 123-45-6788 verified", "US_SSN", "123-45-6788"),
    ("social security number 536225384", "US_SSN", "536225384"),
    ("call (212) 736-5000 after noon", "PHONE_NUMBER", "(212) 736-5000"),
    ("mobile +44 20 7946 0958", "PHONE_NUMBER", "+44 20 7946 0958"),
    ("phone 415.555.2671", "PHONE_NUMBER", "415.555.2671"),
    ("ring (0161) 496 0123 today", "PHONE_NUMBER", "(0161) 496 0123"),
    ("UK +44(0)117 496 0123", "PHONE_NUMBER", "+44(0)117 496 0123"),
    # Formats the benchmark missed: bare trunk-0 digits after a phone cue, no separators.
    ("Sister reachable on 01144960759.", "PHONE_NUMBER", "01144960759"),
    ("call 08081570931 free", "PHONE_NUMBER", "08081570931"),
    ("reachable on (0118)4960217", "PHONE_NUMBER", "(0118)4960217"),
    ("reachable on +441214960548", "PHONE_NUMBER", "+441214960548"),
    # A cue in the previous sentence ("SSN", "NHS") no longer vetoes a phone number.
    (
        "SSN 123-45-6788 is on file. Sister reachable on +44306 999 0150.",
        "PHONE_NUMBER",
        "+44306 999 0150",
    ),
    ("NHS number 943 476 5919. Reachable on 02074960005.", "PHONE_NUMBER", "02074960005"),
    # National formats of Australia, France and Germany, and a bare number with no cue.
    ("Perth office (03) 3788 7623", "PHONE_NUMBER", "(03) 3788 7623"),
    ("Lyon: 05 45 23 28 60.", "PHONE_NUMBER", "05 45 23 28 60"),
    ("Munich (02328) 60129", "PHONE_NUMBER", "(02328) 60129"),
    ("Office line in Lyon: 0430830401.", "PHONE_NUMBER", "0430830401"),
    # Zero-led layouts of other types stay theirs, not phone numbers.
    ("seen 03.04.2021", "DATE_TIME", "03.04.2021"),
    ("078-12-3456", "US_SSN", "078-12-3456"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("pay GB82WEST12345698765432", "IBAN_CODE", "GB82WEST12345698765432"),
    ("login from 192.168.10.24 failed", "IP_ADDRESS", "192.168.10.24"),
    ("client 2001:db8:85a3::8a2e:370:7334 connected", "IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
    ("mac 00:1A:2B:3C:4D:5E", "MAC_ADDRESS", "00:1A:2B:3C:4D:5E"),
    ("see https://example.org/u/jdoe?x=1.", "URL", "https://example.org/u/jdoe?x=1"),
    ("DOB 03/14/1951", "DATE_TIME", "03/14/1951"),
    ("admitted 2023-11-02 to ward", "DATE_TIME", "2023-11-02"),
    ("born March 3rd, 1948", "DATE_TIME", "March 3rd, 1948"),
    ("seen 14 Feb 2022", "DATE_TIME", "14 Feb 2022"),
    ("Springfield, IL 62704", "ZIP_CODE", "62704"),
    ("zip: 10001", "ZIP_CODE", "10001"),
    ("10 Downing Street, London SW1A 2AA", "ZIP_CODE", "SW1A 2AA"),
    ("post to M1 1AE please", "ZIP_CODE", "M1 1AE"),
    ("Ottawa ON K1A 0B6", "ZIP_CODE", "K1A 0B6"),
    ("VIN 1HGCM82633A004352", "VIN", "1HGCM82633A004352"),
    ("IMEI 490154203237518", "IMEI", "490154203237518"),
    ("MRN: 00482913", "MEDICAL_RECORD_NUMBER", "00482913"),
    ("medical record number AB-1234567", "MEDICAL_RECORD_NUMBER", "AB-1234567"),
    ("member id: XJH123456789", "HEALTH_PLAN_ID", "XJH123456789"),
    ("Medicare MBI 1EG4-TE5-MK73", "HEALTH_PLAN_ID", "1EG4-TE5-MK73"),
    ("a 92-year-old woman", "AGE_OVER_89", "92"),
    ("aged 101", "AGE_OVER_89", "101"),
    ("driver's license D1234567", "US_DRIVER_LICENSE", "D1234567"),
    ("passport no. 912803456", "PASSPORT", "912803456"),
    ("NHS number 943 476 5919", "NATIONAL_ID", "943 476 5919"),
    ("DNI 12345678Z", "NATIONAL_ID", "12345678Z"),
    ("codice fiscale RCCMNL83S18D969H", "NATIONAL_ID", "RCCMNL83S18D969H"),
    ("account no. 004512378", "BANK_ACCOUNT", "004512378"),
    ("routing 021000021", "BANK_ACCOUNT", "021000021"),
    ("license plate 7ABC123", "LICENSE_PLATE", "7ABC123"),
    ("lives at 42 Elm Street, Apt 3B", "STREET_ADDRESS", "42 Elm Street, Apt 3B"),
    ("Seen John Smith today", "PERSON", "John Smith"),
    ("Smith, Mary was discharged", "PERSON", "Smith, Mary"),
    ("referred by Dr. Okonkwo", "PERSON", "Okonkwo"),
    # Names from the wider (mimesis, 40+ locales) lists, diacritics, particles, and a
    # surname no list knows after a cue in the same sentence.
    ("Spoke with Hannelore Freudenberger today.", "PERSON", "Hannelore Freudenberger"),
    ("Seen Inès François today", "PERSON", "Inès François"),
    ("Spoke with Ludwig van Beethoven.", "PERSON", "Ludwig van Beethoven"),
    ("Spoke with Gerard Bellweather about it.", "PERSON", "Gerard Bellweather"),
    ("His wife Olga Petrowskaja called.", "PERSON", "Olga Petrowskaja"),
    # No cue: both parts listed, the surname from the 1990 Census list.
    ("Results sent to Kenneth Reitz by post.", "PERSON", "Kenneth Reitz"),
    # No cue: a listed first name and a surname that is no common English word.
    ("Results sent to Lucia Offredi by post.", "PERSON", "Lucia Offredi"),
    ("moved from Texas last year", "LOCATION", "Texas"),
    ("born in West Virginia", "LOCATION", "West Virginia"),
    ("clinic in Springfield, IL", "LOCATION", "Springfield"),
    ("She moved to Leeds last year.", "LOCATION", "Leeds"),
    ("lives in New York City now", "LOCATION", "New York City"),
]

# Look-alikes that must produce no detection at all.
HARD_NEGATIVES = [
    "order 4111 1111 1111 1112 shipped",  # card-like, fails Luhn
    "invoice 1234-5678-9012-3456",  # fails Luhn
    "SSN 000-12-3456",  # area 000 is never issued
    "SSN 666-12-3456",  # area 666 is never issued
    "SSN 912-34-5678",  # 9xx areas are ITINs, not SSNs
    "release v1.2.3.4 and 2.10.1",  # version strings
    "build 10.2.3.4.5",  # five dotted parts
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "md5 d41d8cd98f00b204e9800998ecf8427e",
    "uuid 123e4567-e89b-12d3-a456-426614174000",  # opt-in only
    "flat QQ1 1AA",  # QQ is no postcode area
    "build S1E4M3 passed",  # postal-code letters run together, with no cue
    "vitamin B12 3 times, E11 9",  # near-postcodes
    "BP 120/80 mmHg, HR 72",  # blood pressure
    "glucose 5.6 mmol/L, HbA1c 6.5%, creatinine 1.02 mg/dL",  # lab values
    "dx E11.9 and I10, J45.909",  # ICD-10 codes
    "meds at 08:30, 12:45:10 and 20:00",  # clock times
    "a 45-year-old man, aged 67",  # ages under 90
    "impossible date 2023-02-30",
    "order #88213 ships in 5 days",
    "ratio 3/4/5 of the batch",
    "IBAN GB00WEST12345698765432",  # wrong mod-97
    "VIN 1HGCM82633A004353",  # wrong check digit
    "IMEI 490154203237519",  # fails Luhn
    "count 123456789 rows",  # bare nine digits, no context
    "batch 01234567890123 done",  # a long zero-led code is no phone number
    "ref 02074960005 filed",  # bare trunk-0 digits introduced as a reference
    "Tracking 0430830401 and claim 0219636205",  # ... as other kinds of number
    "call about order 01144960759",  # the nearest cue says order number
    "call +44 1632 960 430",  # Ofcom's drama range, assigned to no one
    "phone +44 29 2018 648",  # a Cardiff 029 number one digit short
    "tracking 1Z999AA10123456784",
    "the New York Times and the Jordan River",  # a place word inside a longer name
    "Grace Hospital on May Day",  # first names that are not people here
]


# Capitalised pairs that are places, institutions, dates or phrases: no PERSON, and for
# the places the LOCATION they are; given names that are also cities: no LOCATION.
NOT_PEOPLE = [
    ("Travelled to Sierra Leone last spring.", [("LOCATION", "Sierra Leone")]),
    ("to Svalbard & Jan Mayen Islands", [("LOCATION", "Svalbard & Jan Mayen Islands")]),
    ("Phone Number, Kenya", [("LOCATION", "Kenya")]),
    # Census surnames that are common nouns never carry a name alone.
    ("Licensed by Derivative Works with Covered Code", []),
    ("Hello World from Grant No", []),
    ("Mark Complete when done, Will Travel tomorrow", []),  # common words as surnames
    ("Steuernummer, German", []),  # the comma form never reads a nationality as a name
    ("closed on Easter Sunday", []),
    # A city name that is also a given name is a place only after a place word.
    ("Florence said the results were fine", []),
    ("left in Florence's care", []),
    ("Spoke with Virginia Beach staff", []),
    ("met at San Francisco General", []),
    ("spoke with Mercy Clinic and Grace Hospital", []),
    ("The Python Software Foundation", []),
    ("My Name is on the form", []),
    ("Copyright Holder", []),
    ("Spoke with Gerard Street", []),  # one listed part, but a street
    ("Seen Random Words here", []),  # neither part listed, and no label
]


@pytest.mark.parametrize(("text", "expected"), NOT_PEOPLE)
def test_places_and_people_are_told_apart(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(d.entity, text[d.start : d.end]) for d in analyze(text)] == expected


@pytest.mark.parametrize(("text", "entity", "span"), POSITIVES)
def test_positive_fires_on_exact_span(text: str, entity: str, span: str) -> None:
    found = [(d.entity, text[d.start : d.end]) for d in analyze(text)]
    assert (entity, span) in found


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negative_is_silent(text: str) -> None:
    found = [(d.entity, text[d.start : d.end]) for d in analyze(text)]
    assert found == []


def test_uuid_only_when_asked() -> None:
    text = "user 123e4567-e89b-12d3-a456-426614174000 and 123e4567-e89b-12d3-a456-42661417400"
    assert analyze(text) == []
    found = [(d.entity, text[d.start : d.end]) for d in analyze(text, opt_in=["UUID"])]
    assert found == [("UUID", "123e4567-e89b-12d3-a456-426614174000")]
    assert [d.entity for d in analyze(text, entities=["UUID"])] == ["UUID"]


def test_every_recognizer_has_a_positive_case() -> None:
    covered = {entity for _, entity, _ in POSITIVES} | {"UUID"}
    assert {r.entity for _, r in RECOGNIZERS.items()} <= covered


def test_explanation_names_pattern_validator_and_context() -> None:
    (det,) = analyze("card 4111 1111 1111 1111")
    assert "card-grouped" in det.explanation
    assert "Luhn" in det.explanation
    assert "'card'" in det.explanation


def test_nearest_context_cue_decides() -> None:
    text = "call (212) 736-5000 or NHS number 943 476 5919"
    found = [(d.entity, text[d.start : d.end]) for d in analyze(text)]
    assert found == [("PHONE_NUMBER", "(212) 736-5000"), ("NATIONAL_ID", "943 476 5919")]
