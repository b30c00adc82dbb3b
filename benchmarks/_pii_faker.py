"""A held-out PII corpus from Faker: values from a generator the patterns were not written for.

``benchmarks/_pii_corpus.py`` is ours, so detection tuned on it could learn its quirks. This
corpus takes every value from Faker's own providers (its phone formats with extensions, its
card brands and IIN prefixes, IBANs of several countries, its URL and e-mail styles) and puts
it in Faker-generated filler sentences, so what the accuracy benchmark reports here is how the
detector does on data nobody tuned it to. The only reshaping is what people do when they type
values: a card or an IBAN printed in groups of four, a MAC address in upper case.

Hard negatives come from Faker too: UUIDs, hashes, EAN and ISBN barcodes, ISO timestamps,
ZIP+4 codes, user agents (version strings), BBANs and SWIFT codes (not IBANs), licence plates,
prices, coordinates and order numbers. They are labelled ``~kind``: a prediction on one counts
as a false positive.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faker import Faker

__all__ = ["generate_faker"]

Span = tuple[str, int, int]
Record = tuple[str, list[Span]]

#: Locales whose IBANs and phone numbers are drawn (en_US also gives SSNs and US phones).
IBAN_LOCALES = ("en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "pl_PL")
PHONE_LOCALES = ("en_GB", "fr_FR", "es_ES", "nl_NL")
CARD_TYPES = (
    "visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb16", "jcb15",
    "maestro",
)  # fmt: skip

#: How people label a value in a note; "" (no label) about half the time.
_LABELS: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": ("Email", "e-mail", "contact", "reply to"),
    "PHONE_NUMBER": ("Phone", "Tel", "mobile", "call"),
    "CREDIT_CARD": ("Card", "card number", "paid with", "CC"),
    "IBAN_CODE": ("IBAN", "account", "bank account", "transfer to"),
    "US_SSN": ("SSN", "social security number", "SSN#", "social"),
    "IP_ADDRESS": ("IP", "from host", "client address", "remote"),
    "URL": ("see", "link", "website", "profile"),
    "MAC_ADDRESS": ("MAC", "device", "hardware address", "adapter"),
}
_NEG_LABELS: tuple[str, ...] = ("id", "ref", "code", "no.", "value", "")


def _group4(value: str, sep: str) -> str:
    return sep.join(value[i : i + 4] for i in range(0, len(value), 4))


def generate_faker(n: int, seed: int = 4242) -> list[Record]:
    """``n`` records of Faker values: two in three hold one or two positives, all a negative.

    Args:
        n: Number of records.
        seed: Seed for Faker and for the choices made here (same seed, same corpus).

    Returns:
        ``(text, spans)`` pairs; ``spans`` are ``(type, start, end)``, negatives as ``~kind``.
    """
    from faker import Faker

    rng = random.Random(seed)
    Faker.seed(seed)
    us = Faker("en_US")
    ibans = {loc: Faker(loc) for loc in IBAN_LOCALES}
    phones = {loc: Faker(loc) for loc in PHONE_LOCALES}

    def card() -> str:
        number = us.credit_card_number(rng.choice(CARD_TYPES))
        if len(number) == 16 and rng.random() < 0.4:
            return _group4(number, rng.choice([" ", "-"]))
        return number

    def iban() -> str:
        value = ibans[rng.choice(IBAN_LOCALES)].iban()
        return _group4(value, " ") if rng.random() < 0.4 else value

    def phone() -> str:
        if rng.random() < 0.7:
            return us.phone_number()
        return phones[rng.choice(PHONE_LOCALES)].phone_number()

    def ip() -> str:
        return rng.choice([us.ipv4, us.ipv4_public, us.ipv4_private, us.ipv6])()

    def mac() -> str:
        value = us.mac_address()
        return value.upper() if rng.random() < 0.3 else value

    positives: dict[str, Callable[[], str]] = {
        "EMAIL_ADDRESS": lambda: rng.choice([us.email, us.free_email, us.company_email])(),
        "PHONE_NUMBER": phone,
        "CREDIT_CARD": card,
        "IBAN_CODE": iban,
        "US_SSN": us.ssn,
        "IP_ADDRESS": ip,
        "URL": lambda: rng.choice([us.url, us.uri])(),
        "MAC_ADDRESS": mac,
    }
    negatives: dict[str, Callable[[], str]] = {
        "uuid": lambda: str(us.uuid4()),
        "sha256": us.sha256,
        "md5": us.md5,
        "ean13": us.ean13,
        "isbn13": us.isbn13,
        "isbn10": us.isbn10,
        "timestamp": us.iso8601,
        "zip4": us.zipcode_plus4,
        "user_agent": us.user_agent,
        "bban": ibans["de_DE"].bban,
        "swift": us.swift,
        "plate": us.license_plate,
        "price": us.pricetag,
        "coordinates": lambda: f"{us.latitude()}, {us.longitude()}",
        "order": lambda: us.bothify(rng.choice(["ORD-########", "#########", "PO ####-####"])),
    }
    kinds, negs = sorted(positives), sorted(negatives)
    records: list[Record] = []
    for i in range(n):
        items: list[tuple[str, str, str]] = []
        if i % 3 != 2:
            for kind in (kinds[i % len(kinds)], rng.choice(kinds))[: rng.randint(1, 2)]:
                label = rng.choice(_LABELS[kind]) if rng.random() < 0.5 else ""
                items.append((kind, label, positives[kind]()))
        neg = rng.choice(negs)
        items.append((f"~{neg}", rng.choice(_NEG_LABELS), negatives[neg]()))
        rng.shuffle(items)
        records.append(_fill(rng, us, items))
    return records


def _fill(rng: random.Random, fake: Faker, items: list[tuple[str, str, str]]) -> Record:
    """Filler sentences around each ``label: value``; the spans of the values."""
    sentence = fake.sentence
    text, spans = "", []
    for kind, label, value in items:
        lead = sentence() if rng.random() < 0.7 else ""
        head = f"{lead} {label}: " if label else f"{lead} "
        head = head.lstrip()
        if text:
            text += rng.choice([" ", "\n", " | ", ". "])
        start = len(text) + len(head)
        text += head + value
        spans.append((kind, start, start + len(value)))
        if rng.random() < 0.5:
            text += " " + sentence()
    return text, spans
