"""Checks: turn one regex match into zero or more validated, scored spans.

A check gets the whole text and the match offsets (so it can look at the characters around the
match, which the linear-time regex cannot) and returns ``(start, end, score)`` tuples. Scores
here are before context; :mod:`guardflow.pii._context` adjusts them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from guardflow.pii._validators import (
    card_brand_ok,
    digits_of,
    is_bitcoin,
    is_iban,
    is_ip,
    is_ssn,
    luhn_ok,
)

__all__ = ["CHECKS", "Check", "Span"]

Span = tuple[int, int, float]
Check = Callable[[str, int, int, float], list[Span]]

_SEP = re.compile(r"[ .-]+")
_DATE = re.compile(
    r"^(?:(?:19|20)[0-9]{2}[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12][0-9]|3[01])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:19|20)[0-9]{2}"
    r"|(?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12][0-9]|3[01])[-./ ](?:19|20)[0-9]{2})$"
)
_US_STYLE = re.compile(r"^(?:\+?1[ .-]?)?(?:\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}")
_EXT = re.compile(r"[ ]?(?:x|ext\.?|extension)[ ]?[0-9]{1,6}$")
_REGIONS = (
    "GB", "DE", "FR", "IN", "BR", "CA", "AU", "IL", "ES", "IT", "NL", "SE", "CH", "BE", "PL",
    "PT", "HU", "FI", "CZ", "AT", "DK", "NO", "IE", "RU", "CN", "JP", "MX", "ZA", "NZ", "SG",
)  # fmt: skip


def _char(text: str, i: int) -> str:
    # NUL, not "", outside the text: "" is "in" every string.
    return text[i] if 0 <= i < len(text) else "\x00"


def _glued_number(text: str, start: int, end: int, seps: str = ".-/:") -> bool:
    """Whether the span continues a longer number (``1.2.3.4.5``, ``12-34-...``, ``10:30``)."""
    before, before2 = _char(text, start - 1), _char(text, start - 2)
    after, after2 = _char(text, end), _char(text, end + 1)
    if before in seps and before2.isdigit():
        return True
    return after in seps and after2.isdigit()


def _group_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Yield sub-spans made of whole separator-delimited groups, longest first."""
    groups: list[tuple[int, int]] = []
    pos = start
    for m in _SEP.finditer(text, start, end):
        if m.start() > pos:
            groups.append((pos, m.start()))
        pos = m.end()
    if pos < end:
        groups.append((pos, end))
    n = len(groups)
    for size in range(n - 1, 0, -1):
        for i in range(n - size + 1):
            yield groups[i][0], groups[i + size - 1][1]


def check_card(text: str, start: int, end: int, score: float) -> list[Span]:
    """Brand prefix/length and Luhn on the match or, failing that, on whole-group sub-spans."""
    if _glued_number(text, start, end, ".-/"):
        return []
    spans = [(start, end)]
    if len(_SEP.findall(text, start, end)) <= 7:  # cards print in at most 5-6 groups
        spans.extend(_group_spans(text, start, end))
    for s, e in spans:
        d = digits_of(text[s:e])
        if 12 <= len(d) <= 19 and card_brand_ok(d) and luhn_ok(d) and len(set(d)) > 1:
            return [(s, e, score)]
    return []


def check_iban(text: str, start: int, end: int, score: float) -> list[Span]:
    """Country length and mod-97 on the match, trimming trailing words that got glued on."""
    e = end
    while e > start:
        if is_iban(text[start:e]):
            return [(start, e, score)]
        cut = text.rfind(" ", start, e)
        if cut < 0:
            break
        e = cut
    return []


def check_ssn(text: str, start: int, end: int, score: float) -> list[Span]:
    """SSN area/group/serial rules, not part of a longer dashed or dotted number."""
    if _glued_number(text, start, end) or not is_ssn(text[start:end]):
        return []
    return [(start, end, score)]


def check_ip(text: str, start: int, end: int, score: float) -> list[Span]:
    """``ipaddress`` validation, IPv4 not inside a longer dotted string, IPv6 with real content."""
    candidate = text[start:end]
    if "." in candidate and ":" not in candidate:
        if _glued_number(text, start, end, "."):
            return []
        return [(start, end, score)] if is_ip(candidate) else []
    # IPv6: trim a trailing colon (end of a sentence "at fe80::1:"), check the boundaries.
    while end > start and text[end - 1] == ":" and text[end - 2 : end] != "::":
        end -= 1
    candidate = text[start:end]
    before, after = _char(text, start - 1), _char(text, end)
    if before.isalnum() or before in ":_" or after.isalnum() or after in ":_":
        return []
    if not is_ip(candidate):
        return []
    hexdigits = sum(c not in ":." for c in candidate)
    if "::" in candidate and (hexdigits < 5 or not any(c.isdigit() for c in candidate)):
        return []  # "a::b", "10:20::" and friends are code or times, not addresses
    return [(start, end, score)]


def check_mac(text: str, start: int, end: int, score: float) -> list[Span]:
    """Not part of a longer run of hex groups."""
    after, after2 = _char(text, end), _char(text, end + 1)
    before, before2 = _char(text, start - 1), _char(text, start - 2)
    hexchars = "0123456789abcdefABCDEF"
    if (after in ":-." and after2 in hexchars) or (before in ":-." and before2 in hexchars):
        return []
    return [(start, end, score)]


def check_url(text: str, start: int, end: int, score: float) -> list[Span]:
    """Trim trailing punctuation (and an unbalanced closing bracket); require a host."""
    while end > start and text[end - 1] in ".,;:!?'\"":
        end -= 1
    while (
        end > start
        and text[end - 1] in ")]"
        and text.count("(" if text[end - 1] == ")" else "[", start, end)
        < text.count(text[end - 1], start, end)
    ):
        end -= 1
        while end > start and text[end - 1] in ".,;:!?'\"":
            end -= 1
    candidate = text[start:end]
    host = candidate.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = host.rsplit("@", 1)[-1].split(":", 1)[0]
    if not host or ("." not in host and host.lower() != "localhost" and not host.startswith("[")):
        return []
    return [(start, end, score)]


def check_email(text: str, start: int, end: int, score: float) -> list[Span]:
    """Trim leading dots, reject consecutive dots."""
    while start < end and text[start] in ".'":
        start += 1
    local = text[start:end].split("@", 1)[0]
    if not local or ".." in text[start:end]:
        return []
    return [(start, end, score)]


def check_btc(text: str, start: int, end: int, score: float) -> list[Span]:
    """Base58check or bech32/bech32m checksum."""
    return [(start, end, score)] if is_bitcoin(text[start:end]) else []


def check_plain(text: str, start: int, end: int, score: float) -> list[Span]:
    """Shapes specific enough to need no validator (key ids, tokens, PEM blocks)."""
    while end > start and text[end - 1] in "\r\n \t":
        end -= 1
    return [(start, end, score)]


def check_jwt(text: str, start: int, end: int, score: float) -> list[Span]:
    """The header must decode to a JSON object (base64url)."""
    header = text[start:end].split(".", 1)[0]
    try:
        decoded: Any = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return []
    return [(start, end, score)] if isinstance(decoded, dict) else []


@lru_cache(maxsize=65536)
def _phone_base(candidate: str) -> float:
    """Score a phone candidate with phonenumbers; 0 when it is not a possible number."""
    import phonenumbers

    body = _EXT.sub("", candidate)
    digits = digits_of(body)
    if not 7 <= len(digits) <= 15 or len(set(digits)) < 3:
        return 0.0
    international = body.startswith("+") or body.startswith("00")
    if international:
        try:
            num = phonenumbers.parse("+" + body.lstrip("+")[2:] if body.startswith("00") else body)
        except phonenumbers.NumberParseException:
            return 0.0
        if phonenumbers.is_valid_number(num):
            return 0.85
        return 0.35 if phonenumbers.is_possible_number(num) else 0.0
    try:
        us = phonenumbers.parse(body, "US")
        if phonenumbers.is_valid_number(us) and us.country_code == 1:
            return 0.65 if _US_STYLE.match(body) else 0.4
    except phonenumbers.NumberParseException:
        pass
    possible = False
    for region in _REGIONS:
        try:
            num = phonenumbers.parse(body, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            return 0.4
        possible = possible or phonenumbers.is_possible_number(num)
    return 0.3 if possible else 0.0


def check_phone(text: str, start: int, end: int, score: float) -> list[Span]:
    """Valid or possible number per phonenumbers (US first, then common regions); not a date."""
    if _glued_number(text, start, end, ".-/:,"):
        return []
    before = _char(text, start - 1)
    if before.isalnum() or before in "_#@$€£":
        return []
    spans = [(start, end)]
    if digits_of(text[start:end]).__len__() > 15 or _base(text, start, end) == 0.0:
        spans.extend(_group_spans(text, start, end))
    for s, e in spans:
        candidate = text[s:e]
        if _DATE.match(candidate):
            continue
        base = _base(text, s, e)
        if base > 0:
            return [(s, e, base)]
    return []


def _base(text: str, start: int, end: int) -> float:
    return _phone_base(text[start:end])


CHECKS: dict[str, Check] = {
    "email": check_email,
    "url": check_url,
    "www": check_url,
    "ipv4": check_ip,
    "ipv6": check_ip,
    "mac": check_mac,
    "card": check_card,
    "iban": check_iban,
    "ssn_dash": check_ssn,
    "ssn_space": check_ssn,
    "ssn_dot": check_ssn,
    "ssn_bare": check_ssn,
    "phone": check_phone,
    "btc": check_btc,
    "aws_key_id": check_plain,
    "github": check_plain,
    "slack": check_plain,
    "jwt": check_jwt,
    "pem": check_plain,
    "pem_open": check_plain,
}
