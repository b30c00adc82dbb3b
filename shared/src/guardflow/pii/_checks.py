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
    IBAN_LENGTHS,
    card_brand_ok,
    card_lengths,
    digits_of,
    is_bitcoin,
    is_hyphenated_isbn,
    is_iban,
    is_ip,
    is_ssn,
    luhn_ok,
)

__all__ = ["CHECKS", "PENDING", "REGIONAL_MAX", "Check", "Span", "pending_cap", "phone_regional"]

Span = tuple[int, int, float]
Check = Callable[[str, int, int, float], list[Span]]

_SEP = re.compile(r"[ .-]+")
_NON_DIGITS = re.compile(r"[^0-9]+")
_DATE = re.compile(
    r"^(?:(?:19|20)[0-9]{2}[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12][0-9]|3[01])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:19|20)[0-9]{2}"
    r"|(?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12][0-9]|3[01])[-./ ](?:19|20)[0-9]{2})$"
)
_US_STYLE = re.compile(r"^(?:\+?1[ .-]?)?(?:\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}")
# A North American number in the layout people write one in: area code and exchange both
# starting 2-9, an optional +1 / 1 prefix, then ``(NXX) NXX-XXXX`` or 3-3-4 groups joined by
# one dash or dot throughout (``NXX-NXX-XXXX``). Spaces alone (``300 400 5000``) join counts
# in prose as often, so they are not the layout.
_NANP_LAYOUT = re.compile(
    r"(?:\+?1[ .-]?)?"
    r"(?:\([2-9][0-9]{2}\)[ .-]?[2-9][0-9]{2}[ .-]|[2-9][0-9]{2}([.-])[2-9][0-9]{2}\1)[0-9]{4}"
)
_EXT = re.compile(r"[ ]?(?:x|ext\.?|extension)[ ]?[0-9]{1,6}$")


def _no_ext(candidate: str) -> str:
    """``candidate`` without a trailing extension (every spelling of one holds an "x")."""
    return _EXT.sub("", candidate) if "x" in candidate else candidate


# Shapes that are never phone numbers: an SSN (ddd-dd-dddd), a ZIP+4 code, an IPv4-shaped
# dotted quad, a compact timestamp (YYYYMMDDhhmm[ss]).
_NOT_PHONE = re.compile(
    r"^(?:[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{5}-[0-9]{4}|[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
    r"|(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?:[01][0-9]|2[0-3])[0-5][0-9]"
    r"(?:[0-5][0-9])?)$"
)
# Card groupings as printed: 4-4-4-4 (last group 1-4 digits, up to 19 digits), 4-6-5, 4-6-4.
_CARD_GROUPING = re.compile(
    r"^(?:[0-9]{12,19}|[0-9]{4}( ?)[0-9]{6}\1[0-9]{4,5}|[0-9]{4}([ -])[0-9]{6}\2[0-9]{4,5}"
    r"|[0-9]{4}([ -])[0-9]{4}\3[0-9]{4}\3[0-9]{1,4}(?:\3[0-9]{1,3})?)$"
)
#: Score of a card in a non-standard grouping or trimmed from a longer number (needs context).
WEAK_CARD = 0.45
_IBAN_HEAD = re.compile(r"^[A-Za-z]{2}[0-9]{2}$")
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


def _glued_token(text: str, start: int, end: int) -> bool:
    """Whether the span continues an identifier by ``-``, ``/`` or ``_`` (``ORD-2024-...``).

    Only the left side counts: a word glued on the right (``555-0100-Fax``) is a label.
    """
    del end
    before, before2 = _char(text, start - 1), _char(text, start - 2)
    return before in "-/_" and before2.isalnum()


def _in_iban_token(text: str, start: int) -> bool:
    """Whether ``start`` continues a spaced IBAN-shaped token (``CC99 dddd dddd ...``)."""
    if not _char(text, start).isalnum():
        return False
    i = start
    for _ in range(9):
        if _char(text, i - 1) != " ":
            return False
        k = i - 1
        while k > 0 and text[k - 1].isalnum() and i - 1 - k < 5:
            k -= 1
        group = text[k : i - 1]
        if _IBAN_HEAD.match(group) and group[:2].upper() in IBAN_LENGTHS:
            return True
        if len(group) != 4 or (k > 0 and text[k - 1].isalnum()):
            return False
        i = k
    return False


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
    """Brand prefix/length and Luhn on the match or, failing that, on its leading groups.

    A whole match printed as cards are (contiguous, 4-4-4-4, 4-6-5, 4-6-4) keeps the full
    score; other groupings and a number trimmed from a longer one score ``WEAK_CARD`` and need
    a context word. Digits inside an IBAN-shaped token or a dashed identifier are not cards.

    The pattern is greedy, so a number just before a card, one space away, lands in the same
    match (``qty 2 4111 1111 1111 1111``, an IP address then a card): when the match fails
    from its start, it is tried again from each later group that follows a space. A card
    found so keeps its score only when the one group skipped is a short number (at most two
    digits) or the end of a dotted one (an IP address), and no digit group follows it;
    otherwise the digits may be one long number, and it scores ``WEAK_CARD``.
    """
    found = _card_at(text, start, end, score)
    if found:
        return found
    first = True
    for space in _SPACE.finditer(text, start, end):
        found = _card_at(text, space.end(), end, score)
        if found:
            s, e, sc = found[0]
            apart = space.start() - start <= 2 or _glued_number(text, start, start, ".")
            ends = not (_char(text, e) == " " and _char(text, e + 1).isdigit())
            return [(s, e, sc if first and apart and ends else WEAK_CARD)]
        first = False
    return []


_SPACE = re.compile(" ")


def _card_at(text: str, start: int, end: int, score: float) -> list[Span]:
    """:func:`check_card` on the span from ``start``: whole, or trimmed to leading groups."""
    if end - start < 12 or not _brand_fits(digits_of(text[start:end])):
        return []
    if _glued_number(text, start, start, ".-/") or _glued_token(text, start, start):
        return []
    if _in_iban_token(text, start):
        return []
    spans: list[tuple[int, int, float]] = []
    glued_after = _glued_number(text, end, end, ".-/")
    if glued_after:  # the last group starts the next token (a date, a dotted number)
        cut = max(text.rfind(" ", start, end), text.rfind("-", start, end))
        start_end = (start, cut) if cut > start else None
    else:
        start_end = (start, end)
    if start_end is not None:
        whole = _CARD_GROUPING.match(text[start_end[0] : start_end[1]])
        spans.append((*start_end, score if whole else WEAK_CARD))
    if len(_SEP.findall(text, start, end)) <= 7:  # cards print in at most 5-6 groups
        spans.extend((s, e, WEAK_CARD) for s, e in _group_spans(text, start, end) if s == start)
    for s, e, sc in spans:
        d = digits_of(text[s:e])
        if 12 <= len(d) <= 19 and card_brand_ok(d) and luhn_ok(d) and len(set(d)) > 1:
            return [(s, e, sc)]
    return []


def _brand_fits(digits: str) -> bool:
    """Whether some leading run of ``digits`` has a card brand's prefix and length.

    Every span :func:`_card_at` tries starts where the match does, so its digits lead
    ``digits``: when no such run fits a brand, none of them is a card.
    """
    return len(digits) >= 12 and any(n <= len(digits) for n in card_lengths(digits))


def _iban_prefix(text: str, start: int, end: int) -> int:
    """End of the longest valid IBAN at ``start`` within ``end`` (whole words), else -1."""
    e = end
    while e > start:
        if is_iban(text[start:e]):
            return e
        cut = text.rfind(" ", start, e)
        if cut < 0:
            break
        e = cut
    return -1


def check_iban(text: str, start: int, end: int, score: float) -> list[Span]:
    """Country length and mod-97, trimming trailing words that got glued on.

    The greedy pattern can run from one IBAN into the next token (another IBAN, a word of
    two letters and digits); after each valid or failed start the search resumes there, so a
    second IBAN that begins inside the match is found too.
    """
    from guardflow.pii._patterns import PATTERNS

    found: list[Span] = []
    pos, m_end = start, end
    while True:
        e = _iban_prefix(text, pos, m_end)
        if e > 0:
            found.append((pos, e, score))
        m = _iban_re(PATTERNS).search(text, e if e > 0 else pos + 1)
        if m is None or m.start() >= end:
            return found
        pos, m_end = m.start(), m.end()


@lru_cache(maxsize=1)
def _iban_re(patterns: tuple[Any, ...]) -> re.Pattern[str]:
    return re.compile(next(p.regex for p in patterns if p.name == "iban"))


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


#: Score marking a phone span that only a regional (national-format) parse could validate.
#: Such a span scores at most :func:`pending_cap` (``REGIONAL_MAX``, or ``NATIONAL_LAYOUT``
#: for a number standing alone in its national layout), so the detector runs the costly
#: regional parse (:func:`phone_regional`) only when that cap plus context reaches
#: ``min_score``.
PENDING = -1.0
#: Highest score a regional (non-US, no ``+CC``) number gets before context.
REGIONAL_MAX = 0.4
#: Score of a number in the North American layout whose area code the library does not know
#: (unassigned, newer than its metadata, or fictional): the layout itself marks a phone.
NANP_LAYOUT = 0.5
#: Score of a ``+CC`` number of a length its country allows that the library does not know as
#: assigned (the UK's and others' ranges kept for fiction, new ranges): the ``+`` marks a phone.
INTL_POSSIBLE = 0.5
# A signed decimal (``+40.7128``, a coordinate), never an international number.
_DECIMAL = re.compile(r"\+ ?[0-9]+\.[0-9]+")
#: Highest score of a national-format number written with its trunk prefix and separators
#: (``01632 960123``, ``(020) 7946 0958``, ``01 23 45 67 89``), valid in one of the regions.
NATIONAL_LAYOUT = 0.5
# A national number's layout: trunk prefix 0 (bracketed or not) then a non-zero digit, and at
# least one separator between digit groups; a bare run of digits needs a context word.
_TRUNK = re.compile(r"\(?0[1-9]")


def _national_layout(body: str) -> bool:
    """A trunk prefix ``0`` (bracketed or not) then a non-zero digit, and a separator."""
    return _TRUNK.match(body) is not None and not body.isdigit()


_GROUP_BEFORE = re.compile(r"[0-9][ .-]?$")
_GROUP_AFTER = re.compile(r"[ .-]?[0-9]")


def pending_cap(text: str, start: int, end: int) -> float:
    """Highest score a national-format span of ``text`` can get before context.

    :data:`NATIONAL_LAYOUT` for a number in its national layout that stands alone;
    :data:`REGIONAL_MAX` for a bare run of digits or a span trimmed from a longer number
    (``0964 8785 5263`` inside a card-like ``5562 0964 8785 5263``).
    """
    body = _no_ext(text[start:end])
    if not _national_layout(body):
        return REGIONAL_MAX
    if len(digits_of(body)) < 10 and len(_NON_DIGITS.findall(body)) < 2:
        return REGIONAL_MAX  # "03262 2437": a ZIP code and a house number as often as a phone
    if _GROUP_BEFORE.search(text, max(0, start - 2), start) or _GROUP_AFTER.match(text, end):
        return REGIONAL_MAX
    return NATIONAL_LAYOUT


# A phone's body: optional +CC / 00 prefix, an optional (area) group, then digit groups joined
# by single separators; or one run of digits.
_PHONE_SHAPE = re.compile(
    r"^(?:\+ ?|00 ?)?(?:\([0-9]{1,5}\)[ .-]?)?[0-9]{1,14}(?:(?:[ .-]|[ ][.-][ ]|[ ]?\([0-9]{1,5}\)"
    r"[ .-]?)[0-9]{1,14}){0,7}$"
)


def _phone_body(candidate: str) -> str | None:
    """The number without its extension, when its shape and digit count fit a phone."""
    body = _no_ext(candidate)
    digits = digits_of(body)
    if not 7 <= len(digits) <= 15 or len(set(digits)) < 3:
        return None
    if _NOT_PHONE.match(body) or _DATE.match(body) or not _PHONE_SHAPE.match(body):
        return None
    return body


@lru_cache(maxsize=65536)
def _phone_parse(body: str, region: str | None) -> tuple[bool, bool, int]:
    """``(valid, possible, country code)`` of one parse, cached per candidate and region."""
    import phonenumbers

    try:
        num = phonenumbers.parse(body, region)
    except phonenumbers.NumberParseException:
        return False, False, 0
    if phonenumbers.is_valid_number(num):
        return True, True, num.country_code or 0
    return False, phonenumbers.is_possible_number(num), num.country_code or 0


@lru_cache(maxsize=65536)
def phone_strong(candidate: str) -> float:
    """Score a candidate as an international (``+CC``/``00CC``) or US number; 0 if neither.

    International numbers are parsed once, under the region of their country code; other
    numbers under the US region only. :data:`PENDING` means "not US, maybe another country's
    national format" (see :func:`phone_regional`).
    """
    body = _phone_body(candidate)
    if body is None:
        return 0.0
    if body.startswith("+") or body.startswith("00"):
        e164 = "+" + body.lstrip("+")[2:] if body.startswith("00") else body
        valid, possible, _ = _phone_parse(e164, None)
        if valid:
            return 0.85
        if possible and _NANP_LAYOUT.fullmatch(e164):
            return NANP_LAYOUT
        if possible and body.startswith("+") and not _DECIMAL.fullmatch(body):
            return INTL_POSSIBLE
        return 0.35 if possible else 0.0
    digits = digits_of(body)
    nanp = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    if len(nanp) != 10 or nanp[0] in "01" or nanp[3] in "01":
        return PENDING  # not a North American number: area and exchange codes start 2-9
    valid, _, cc = _phone_parse(body, "US")
    if valid and cc == 1:
        return 0.65 if _US_STYLE.match(body) else REGIONAL_MAX
    if _NANP_LAYOUT.fullmatch(body):
        return NANP_LAYOUT
    return PENDING


@lru_cache(maxsize=65536)
def phone_regional(candidate: str) -> float:
    """Score a national-format candidate under common non-US regions.

    A valid number scores ``NATIONAL_LAYOUT``, the most any national number can; the caller
    caps it with :func:`pending_cap`, which knows the number's layout and neighbours.
    """
    body = _phone_body(candidate)
    if body is None:
        return 0.0
    possible = False
    for region in _REGIONS:
        valid, maybe, _ = _phone_parse(body, region)
        if valid:
            return NATIONAL_LAYOUT
        possible = possible or maybe
    return 0.3 if possible else 0.0


def check_phone(text: str, start: int, end: int, score: float) -> list[Span]:
    """Phone candidates: international or US numbers scored now, national ones ``PENDING``.

    Not a date, an SSN, a ZIP+4, a dotted quad, a compact timestamp, digits glued to an
    identifier or inside an IBAN-shaped token. When no sub-span scores as an international
    or US number, the spans that might be another country's national format are returned
    with :data:`PENDING` scores, in order, for the detector to resolve with
    :func:`phone_regional` when context allows.
    """
    if end - start < 7 or len(_NON_DIGITS.sub("", text[start:end])) < 7:
        return []  # every phone (and every sub-span tried) has 7 digits or more
    if _glued_number(text, start, end, ".-/:,") or _glued_token(text, start, end):
        return []
    before = _char(text, start - 1)
    # A leading "+" starts a number even right after a word ("...co.uk+44 20 ..."): judged
    # by what precedes it, a glued number would pass only once its neighbour is masked.
    if text[start] != "+" and (before.isalnum() or before in "_#@$€£"):
        return []
    if _in_iban_token(text, start):
        return []
    if _NOT_PHONE.match(_no_ext(text[start:end])) or is_hyphenated_isbn(text[start:end]):
        return []  # a whole SSN / ZIP+4 / dotted quad / timestamp / ISBN: no part is a phone
    full = phone_strong(text[start:end])
    if full > 0:
        return [(start, end, full)]
    pending: list[Span] = [(start, end, PENDING)] if full == PENDING else []
    for s, e in _group_spans(text, start, end):
        candidate = text[s:e]
        n = len(digits_of(_no_ext(candidate)))  # an extension is not part of the number
        if not 7 <= n <= 15:
            continue
        if n in (10, 11) or candidate[0] == "+" or candidate.startswith("00"):
            base = phone_strong(candidate)  # may be a US or an international number
            if base > 0:
                return [(s, e, base)]
            if base == 0:
                continue
        pending.append((s, e, PENDING))  # shape checked by phone_regional when it runs
    return pending


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
