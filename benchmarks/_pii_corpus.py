"""A generated PII corpus with hard negatives, for benchmarks/pii_accuracy.py and pii_speed.py.

Written from the standards (Luhn, ISO 13616 mod-97, SSA SSN rules, RFC 4291 text forms, BIP-173/350
bech32, base58check), not from guardflow's patterns, so it does not test our regexes against
themselves. Everything comes from a seeded ``random.Random``: the same seed gives the same corpus.

Each record is ``(text, spans)`` with ``spans`` a list of ``(type, start, end)`` gold spans (code
points, end exclusive); hard negatives are spans too, their kind prefixed with ``~`` (e.g.
``~timestamp``): no detector should report them, and a false positive on one is named by its
kind. About a third of the records hold only hard negatives: strings that look
like PII but are not (Luhn-invalid card-like numbers, IBANs with a wrong check, version strings,
order ids, timestamps, UUIDs, hashes, out-of-range IPs, invalid SSNs, bad-checksum addresses).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import string
import uuid
from collections.abc import Callable

__all__ = ["NEGATIVE_KINDS", "POSITIVE_KINDS", "Record", "generate", "prose"]

Span = tuple[str, int, int]
Record = tuple[str, list[Span]]

# ---------------------------------------------------------------- checksums


def luhn_digit(payload: str) -> str:
    """The Luhn check digit that completes ``payload``."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    """Whether ``number`` (digits only) passes the Luhn check."""
    return luhn_digit(number[:-1]) == number[-1]


def _iban_check(country: str, bban: str) -> str:
    moved = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in moved)
    return f"{98 - int(numeric) % 97:02d}"


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


_BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _bech32(hrp: str, witver: int, program: bytes) -> str:
    const = 1 if witver == 0 else 0x2BC830A3  # bech32 (BIP-173) / bech32m (BIP-350)
    acc, bits, data = 0, 0, [witver]
    for b in program:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod([*expanded, *data, 0, 0, 0, 0, 0, 0]) ^ const
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH[d] for d in data + checksum)


# ---------------------------------------------------------------- positives


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _group(number: str, sizes: list[int], sep: str) -> str:
    parts, i = [], 0
    for size in sizes:
        parts.append(number[i : i + size])
        i += size
    if i < len(number):
        parts.append(number[i:])
    return sep.join(p for p in parts if p)


_CARD_BRANDS: list[tuple[Callable[[random.Random], str], int]] = [
    (lambda r: "4", 16),  # Visa
    (lambda r: "4", 13),  # Visa, old 13-digit
    (lambda r: "4", 19),  # Visa 19-digit
    (lambda r: str(r.randint(51, 55)), 16),  # Mastercard
    (lambda r: str(r.randint(2221, 2720)), 16),  # Mastercard 2-series
    (lambda r: r.choice(["34", "37"]), 15),  # Amex
    (lambda r: r.choice(["6011", "65", str(r.randint(644, 649))]), 16),  # Discover
    (lambda r: str(r.randint(3528, 3589)), 16),  # JCB
    (lambda r: r.choice(["36", "38", "300"]), 14),  # Diners
    (lambda r: "62", 16),  # UnionPay
    (lambda r: "62", 19),  # UnionPay 19-digit
]


def card(rng: random.Random, *, valid: bool = True) -> str:
    """A card number of a random brand, Luhn-valid unless ``valid`` is False, often grouped."""
    prefix_fn, length = rng.choice(_CARD_BRANDS)
    payload = prefix_fn(rng)
    payload += _digits(rng, length - 1 - len(payload))
    check = luhn_digit(payload)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    number = payload + check
    style = rng.random()
    if length in (14, 15) and style < 0.6:  # Amex and Diners print as 4-6-5 and 4-6-4
        return _group(number, [4, 6, 5], rng.choice([" ", "-"]))
    if style < 0.4 or length == 13:
        return number
    return _group(number, [4, 4, 4, 4, 3], rng.choice([" ", "-"]))


_IBAN_FORMATS = {  # country: BBAN layout, n = digit, a = upper-case letter (ISO 13616 registry)
    "DE": "n" * 18,
    "GB": "aaaa" + "n" * 14,
    "FR": "n" * 23,
    "ES": "n" * 20,
    "IT": "a" + "n" * 22,
    "NL": "aaaa" + "n" * 10,
    "CH": "n" * 17,
    "BE": "n" * 12,
    "AT": "n" * 16,
    "PL": "n" * 24,
    "SE": "n" * 20,
    "NO": "n" * 11,
    "IE": "aaaa" + "n" * 14,
    "DK": "n" * 14,
    "FI": "n" * 14,
    "PT": "n" * 21,
}


def iban(rng: random.Random, *, valid: bool = True) -> str:
    """An IBAN of a random country, correct mod-97 check unless ``valid`` is False."""
    country = rng.choice(sorted(_IBAN_FORMATS))
    layout = _IBAN_FORMATS[country]
    bban = "".join(
        rng.choice(string.digits if c == "n" else string.ascii_uppercase) for c in layout
    )
    check = _iban_check(country, bban)
    if not valid:
        # checks run 02..98; moving by 1..96 within that ring never lands on the right one
        check = f"{(int(check) - 2 + rng.randint(1, 96)) % 97 + 2:02d}"
    compact = country + check + bban
    return _group(compact, [4] * 9, " ") if rng.random() < 0.5 else compact


def ssn(rng: random.Random) -> str:
    """A US SSN that follows the SSA rules (area not 000/666/9xx, group and serial not zero)."""
    area = rng.choice([a for a in range(1, 900) if a != 666])
    number = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    return number if rng.random() < 0.8 else number.replace("-", " ")


def phone(rng: random.Random) -> str:
    """A valid phone number (checked with phonenumbers), US or international, in a common style."""
    import phonenumbers

    while True:
        region = rng.choice(["US", "US", "US", "GB", "DE", "FR", "IN", "JP", "BR", "AU", "ES"])
        meta = phonenumbers.example_number(region)
        assert meta is not None
        nsn = str(meta.national_number)
        candidate = nsn[: max(2, len(nsn) - 6)] + _digits(rng, len(nsn) - max(2, len(nsn) - 6))
        number = phonenumbers.parse(candidate, region)
        if not phonenumbers.is_valid_number(number):
            continue
        fmt = phonenumbers.PhoneNumberFormat
        if region == "US":
            national = phonenumbers.format_number(number, fmt.NATIONAL)  # (201) 555-0123
            digits = str(number.national_number)
            return rng.choice(
                [
                    national,
                    f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                    f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
                    f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}",
                    f"+1-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                ]
            )
        if rng.random() < 0.7:
            return phonenumbers.format_number(number, fmt.INTERNATIONAL)
        return phonenumbers.format_number(number, fmt.E164)


def ip(rng: random.Random) -> str:
    """An IPv4 or IPv6 address (v6 compressed, full or with an embedded v4)."""
    kind = rng.random()
    if kind < 0.55:
        return str(ipaddress.IPv4Address(rng.getrandbits(32)))
    v6 = ipaddress.IPv6Address(rng.getrandbits(128))
    if kind < 0.7:
        return v6.exploded
    if kind < 0.85:  # a typical network prefix followed by zeros and a host part
        value = (0x2001_0DB8 << 96) | (rng.getrandbits(16) << 80) | rng.getrandbits(16)
        return str(ipaddress.IPv6Address(value))
    if kind < 0.93:
        return f"fe80::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}"
    return f"::ffff:{ipaddress.IPv4Address(rng.getrandbits(32))}"


_WORDS = ["north", "data", "blue", "acme", "river", "cloud", "shop", "alpha", "news", "mail"]
_TLDS = ["com", "org", "net", "io", "de", "co.uk", "fr", "com.br", "dev", "info"]


def _domain(rng: random.Random) -> str:
    host = rng.choice(_WORDS) + rng.choice(["", "-", ""]) + rng.choice(_WORDS)
    sub = rng.choice(["", "", "www.", "mail.", "api."])
    return f"{sub}{host}{rng.randint(1, 99) if rng.random() < 0.2 else ''}.{rng.choice(_TLDS)}"


def email(rng: random.Random) -> str:
    """An email address with dots, plus tags or digits in the local part."""
    first, last = rng.choice(_WORDS), rng.choice(_WORDS)
    local = rng.choice(
        [f"{first}.{last}", f"{first}{rng.randint(1, 999)}", f"{first}+{last}", f"{first}_{last}"]
    )
    return f"{local}@{_domain(rng).removeprefix('www.')}"


def url(rng: random.Random) -> str:
    """A URL with a scheme, or starting with ``www.``, and a path or query sometimes."""
    path = rng.choice(["", "/", "/docs/intro", "/p/12345?ref=mail&x=1", "/a/b-c_d.html#top"])
    if rng.random() < 0.8:
        return f"{rng.choice(['http', 'https'])}://{_domain(rng)}{path}"
    return f"www.{_domain(rng).removeprefix('www.')}{path}"


def mac(rng: random.Random) -> str:
    """A MAC address with colons, dashes (either case) or Cisco dotted groups."""
    octets = [rng.getrandbits(8) for _ in range(6)]
    style = rng.random()
    if style < 0.45:
        return ":".join(f"{o:02x}" for o in octets)
    if style < 0.8:
        return "-".join(f"{o:02X}" for o in octets)
    raw = "".join(f"{o:02x}" for o in octets)
    return f"{raw[:4]}.{raw[4:8]}.{raw[8:]}"


def crypto(rng: random.Random, *, valid: bool = True) -> str:
    """A Bitcoin address: P2PKH, P2SH, bech32 v0 or bech32m v1 (taproot)."""
    kind = rng.random()
    if kind < 0.3:
        address = _base58check(b"\x00" + rng.randbytes(20))
    elif kind < 0.55:
        address = _base58check(b"\x05" + rng.randbytes(20))
    elif kind < 0.85:
        address = _bech32("bc", 0, rng.randbytes(20))
    else:
        address = _bech32("bc", 1, rng.randbytes(32))
    if not valid:  # change one character in the middle: the checksum no longer matches
        alphabet = _BECH if address.startswith("bc1") else _B58
        i = len(address) // 2
        options = [c for c in alphabet if c != address[i]]
        address = address[:i] + rng.choice(options) + address[i + 1 :]
    return address


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def secret(rng: random.Random) -> str:
    """A leaked credential: AWS access key id, GitHub or Slack token, JWT or private key block."""
    alnum = string.ascii_letters + string.digits
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(["AKIA", "ASIA"]) + "".join(
            rng.choice(string.ascii_uppercase + "234567") for _ in range(16)
        )
    if kind == 1:
        return rng.choice(["ghp_", "gho_", "ghs_"]) + "".join(rng.choice(alnum) for _ in range(36))
    if kind == 2:
        return f"{rng.choice(['xoxb', 'xoxp'])}-{_digits(rng, 11)}-{_digits(rng, 12)}-" + "".join(
            rng.choice(alnum) for _ in range(24)
        )
    if kind == 3:
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"sub": _digits(rng, 8), "iat": rng.randint(1_500_000_000, 1_800_000_000)}
        payload = _b64url(json.dumps(claims).encode())
        return f"{header}.{payload}.{_b64url(rng.randbytes(32))}"
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    body = base64.b64encode(rng.randbytes(rng.randint(90, 200))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----"


POSITIVE_KINDS: dict[str, Callable[[random.Random], str]] = {
    "EMAIL_ADDRESS": email,
    "PHONE_NUMBER": phone,
    "CREDIT_CARD": card,
    "IBAN_CODE": iban,
    "US_SSN": ssn,
    "IP_ADDRESS": ip,
    "URL": url,
    "MAC_ADDRESS": mac,
    "CRYPTO": crypto,
    "SECRET": secret,
}

_LABELS = {
    "EMAIL_ADDRESS": ["email", "e-mail", "contact"],
    "PHONE_NUMBER": ["phone", "tel", "call", "mobile"],
    "CREDIT_CARD": ["card", "card number", "paid with", "cc"],
    "IBAN_CODE": ["IBAN", "account", "transfer to"],
    "US_SSN": ["SSN", "social security number", "ssn#"],
    "IP_ADDRESS": ["ip", "client address", "from host", "src"],
    "URL": ["link", "see", "visit", "url"],
    "MAC_ADDRESS": ["mac", "hw addr", "device"],
    "CRYPTO": ["btc", "wallet", "send to"],
    "SECRET": ["key", "token", "credentials", "auth"],
}

# ---------------------------------------------------------------- hard negatives


def _timestamp(rng: random.Random) -> str:
    y, mo, d = rng.randint(2000, 2030), rng.randint(1, 12), rng.randint(1, 28)
    h, mi, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    return rng.choice(
        [
            f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
            f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}.{rng.randint(0, 999):03d}",
            f"{d:02d}/{mo:02d}/{y} {h:02d}:{mi:02d}",
            f"{y}{mo:02d}{d:02d}{h:02d}{mi:02d}{s:02d}",
            f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}+05:30",
        ]
    )


def _invalid_ssn(rng: random.Random) -> str:
    area, group, serial = f"{rng.randint(1, 665):03d}", rng.randint(1, 99), rng.randint(1, 9999)
    broken = rng.randrange(3)  # break exactly one SSA rule
    if broken == 0:
        area = rng.choice(["000", "666", str(rng.randint(900, 999))])
    elif broken == 1:
        group = 0
    else:
        serial = 0
    return f"{area}-{group:02d}-{serial:04d}"


def _version(rng: random.Random) -> str:
    a, b, c = rng.randint(0, 20), rng.randint(0, 40), rng.randint(0, 300)
    return rng.choice(
        [
            f"v{a}.{b}.{c}",
            f"{a}.{b}.{c}",
            f"{a}.{b}.{c}-rc.{rng.randint(1, 9)}",
            f"{a}.{b}.{c}.{rng.randint(1000, 99999)}",
            f"version {a}.{b}",
        ]
    )


NEGATIVE_KINDS: dict[str, Callable[[random.Random], str]] = {
    "luhn_invalid_card": lambda r: card(r, valid=False),
    "bad_check_iban": lambda r: iban(r, valid=False),
    "version": _version,
    "order_id": lambda r: r.choice(
        [
            f"ORD-{r.randint(2015, 2030)}-{_digits(r, 6)}",
            f"#{''.join(r.choice('ABCDEF0123456789') for _ in range(8))}",
            f"PO{_digits(r, 7)}",
            f"INV/{r.randint(2015, 2030)}/{_digits(r, 5)}",
        ]
    ),
    "timestamp": _timestamp,
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128))),
    "sha1": lambda r: r.randbytes(20).hex(),
    "bad_ipv4": lambda r: ".".join(
        [str(r.randint(256, 999)), *(str(r.randint(0, 255)) for _ in range(3))]
    ),
    "invalid_ssn": _invalid_ssn,
    "bad_checksum_btc": lambda r: crypto(r, valid=False),
    "amount": lambda r: f"${r.randint(1, 999)},{_digits(r, 3)},{_digits(r, 3)}.{_digits(r, 2)}",
    "zip_plus4": lambda r: f"{_digits(r, 5)}-{_digits(r, 4)}",
}


_NEG_LABELS = {
    "luhn_invalid_card": ["ref", "tracking number", "ticket"],
    "bad_check_iban": ["reference", "code"],
    "version": ["running", "upgraded to", "build"],
    "order_id": ["order", "purchase order", "invoice"],
    "timestamp": ["at", "logged", "created"],
    "uuid": ["request id", "trace"],
    "sha1": ["commit", "checksum"],
    "bad_ipv4": ["value", "field"],
    "invalid_ssn": ["employee no.", "case"],
    "bad_checksum_btc": ["id", "label"],
    "amount": ["total", "balance"],
    "zip_plus4": ["zip", "postal code"],
}

_TEMPLATES = [
    "{label}: {value}",
    "Please use {value} for this.",
    "{label} {value}, thanks",
    "Customer note ({label}={value}) updated.",
    "{value}",
    'we got "{value}" from the form; {label} checked.',
    "Reminder - {label} is {value}. Call back tomorrow.",
]


def _fill(rng: random.Random, items: list[tuple[str, str, str]]) -> Record:
    """Join sentences, one per (kind, label, value); return the text and its spans."""
    text, spans = "", []
    for kind, label, value in items:
        template = rng.choice(_TEMPLATES)
        head, tail = template.split("{value}")
        head = head.replace("{label}", label)
        tail = tail.replace("{label}", label)
        if text:
            text += rng.choice([" ", "\n", " | "])
        start = len(text) + len(head)
        text += head + value + tail
        spans.append((kind, start, start + len(value)))
    return text, spans


def generate(n: int, seed: int = 20241124) -> list[Record]:
    """``n`` records: positives of every type mixed with hard negatives, and negatives alone.

    Args:
        n: Number of records.
        seed: Seed of the random generator (same seed, same corpus).

    Returns:
        ``(text, spans)`` pairs; ``spans`` are ``(type, start, end)``, negatives as ``~kind``.
    """
    rng = random.Random(seed)
    kinds, negatives = sorted(POSITIVE_KINDS), sorted(NEGATIVE_KINDS)
    records: list[Record] = []
    for i in range(n):
        items: list[tuple[str, str, str]] = []
        if i % 3 != 2:  # two records in three hold positives (every type in turn), with a negative
            for kind in (kinds[i % len(kinds)], rng.choice(kinds))[: rng.randint(1, 2)]:
                items.append((kind, rng.choice(_LABELS[kind]), POSITIVE_KINDS[kind](rng)))
        for _ in range(rng.randint(1, 2)):
            neg = rng.choice(negatives)
            items.append((f"~{neg}", rng.choice(_NEG_LABELS[neg]), NEGATIVE_KINDS[neg](rng)))
        rng.shuffle(items)
        records.append(_fill(rng, items))
    return records


_PROSE_WORDS = (
    "the", "order", "arrived", "late", "and", "box", "was", "damaged", "so", "we", "asked",
    "for", "a", "refund", "which", "took", "about", "two", "weeks", "customer", "says",
    "app", "crashes", "when", "opening", "settings", "on", "older", "phones", "please",
    "update", "shipping", "notes", "before", "friday", "team", "agreed", "to", "move",
    "meeting", "thanks", "quick", "reply", "delivery", "driver", "left", "parcel", "at",
    "back", "door", "great", "service", "would", "buy", "again", "size", "runs", "small",
    "colour", "matches", "photos", "support", "closed", "ticket",
)  # fmt: skip


def prose(n: int, seed: int = 20241125) -> list[str]:
    """``n`` free-text notes with no PII: words, quantities, prices, times, short dates.

    The kind of text most rows of a comments or notes column hold; numbers stay short
    (quantities, ``$12.50``, ``10:30``, ``2024``) as in such notes.
    """
    rng = random.Random(seed)
    extras = (
        lambda: str(rng.randint(1, 99)),
        lambda: f"${rng.randint(1, 500)}.{rng.randint(0, 99):02d}",
        lambda: f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}",
        lambda: str(rng.randint(1990, 2030)),
        lambda: f"{rng.randint(1, 31)}/{rng.randint(1, 12)}",
    )
    out = []
    for _ in range(n):
        words = [rng.choice(_PROSE_WORDS) for _ in range(rng.randint(8, 30))]
        for _ in range(rng.randint(0, 2)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(extras)())
        out.append(" ".join(words).capitalize() + ".")
    return out
