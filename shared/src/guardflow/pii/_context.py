"""Context (hotword) rules: words near a candidate raise or lower its score.

As Google DLP's hotword rules do, a word from the type's list within a window of characters
before (or, for a few words like "fax", after) a candidate adds a boost; words that name an
unrelated identifier (order, invoice, ISBN, version...) subtract. Weak patterns (a bare 9-digit
number for an SSN, a local-format phone number) start below the default ``min_score`` and pass
only with a supporting word.
"""

from __future__ import annotations

import re
from functools import lru_cache

from guardflow.pii.entities import EntityType

__all__ = [
    "AFTER_WINDOW", "BEFORE_WINDOW", "BOOST", "PENALTY", "ROW_FLAGS", "context_delta",
    "may_support", "row_context",
]  # fmt: skip

#: Characters inspected before and after a candidate.
BEFORE_WINDOW = 48
AFTER_WINDOW = 24
#: Score added by a supporting word, subtracted by a contradicting one.
BOOST = 0.35
PENALTY = 0.4

_T = EntityType

_PHONE_WORDS = (
    "phone", "telephone", "tel", "mobile", "mob", "cell", "cellphone", "fax", "call", "called",
    "calling", "text", "sms", "whatsapp", "contact", "dial", "reach", "ph", "landline", "hotline",
    "office", "desk", "home", "message", "messages", "voicemail", "tlf", "tél",
    "téléphone", "telefon", "telefono", "teléfono", "handy", "answering",
)  # fmt: skip

_BEFORE: dict[EntityType, tuple[str, ...]] = {
    _T.US_SSN: ("ssn", "ssns", "social security", "social sec", "ss#", "ss #", "ss no", "tin",
                "taxpayer", "ssa", "itin"),
    _T.PHONE_NUMBER: _PHONE_WORDS,
    _T.CREDIT_CARD: ("card", "credit", "debit", "visa", "mastercard", "amex", "american express",
                     "discover", "cc", "ccn", "pan", "payment", "paid", "pay", "charge", "charged",
                     "maestro", "jcb", "diners", "unionpay", "expiry", "cvv"),
    _T.IBAN_CODE: ("iban", "account", "acct", "bank", "transfer", "wire", "sepa", "bic", "swift"),
    _T.CRYPTO: ("bitcoin", "btc", "wallet", "crypto", "address", "send", "sats"),
    _T.IP_ADDRESS: ("ip", "ipv4", "ipv6", "address", "host", "server", "client", "from", "src",
                    "dst", "remote", "peer", "gateway", "dns"),
    _T.MAC_ADDRESS: ("mac", "hwaddr", "ether", "bssid", "device"),
    _T.SECRET: ("key", "token", "secret", "password", "credential", "aws", "auth", "bearer"),
}  # fmt: skip

_AFTER: dict[EntityType, tuple[str, ...]] = {
    _T.PHONE_NUMBER: ("phone", "mobile", "cell", "fax", "office", "home", "work", "desk", "tel"),
    _T.US_SSN: ("ssn",),
    _T.CREDIT_CARD: ("card", "visa", "mastercard", "amex"),
}

# Words that say a number is some other identifier; they apply to number-shaped types.
_NEGATIVE = (
    "order", "invoice", "isbn", "issn", "doi", "version", "ver", "release", "build", "tracking",
    "ticket", "case", "po", "sku", "serial", "ref", "reference", "batch", "lot", "zip", "postcode",
    "postal", "timestamp", "epoch", "checksum", "hash", "commit", "uuid", "guid", "part", "model",
)  # fmt: skip
_NEGATIVE_TYPES = frozenset({_T.US_SSN, _T.PHONE_NUMBER, _T.CREDIT_CARD, _T.IP_ADDRESS})


def _words_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alts = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![^\W\d_])(?:{alts})(?![^\W\d_])", re.IGNORECASE)


_BEFORE_RE = {t: _words_regex(w) for t, w in _BEFORE.items()}
_AFTER_RE = {t: _words_regex(w) for t, w in _AFTER.items()}
_NEGATIVE_RE = _words_regex(_NEGATIVE)
# A "v", "rv:" or "version" right before an IP-shaped value makes it a version string, and so
# does a User-Agent product token (``Chrome/120.0.0.0``, ``Version/1.2.3.4``). Only products
# seen in User-Agent strings count, case-sensitively: ``Gateway/192.168.1.1`` or
# ``ipinfo.io/8.8.8.8`` keep their address.
_UA_PRODUCTS = (
    "Mozilla", "AppleWebKit", "Chrome", "Chromium", "CriOS", "Safari", "Firefox", "FxiOS",
    "Gecko", "Version", "Edge", "Edg", "EdgA", "EdgiOS", "OPR", "Opera", "Presto", "Trident",
    "MSIE", "KHTML", "Mobile", "SamsungBrowser", "YaBrowser", "UCBrowser", "Vivaldi", "Brave",
    "Electron", "Dalvik", "okhttp", "curl", "Wget",
)  # fmt: skip
_VERSION_RE = re.compile(
    r"(?:\bv|\brv:\s*|\bversion\s*:?\s*|\bver\.?\s*|(?-i:\b(?:" + "|".join(_UA_PRODUCTS) + r")/))$",
    re.IGNORECASE,
)


# Clause boundaries: a context word does not reach across a line break (unless the line ends
# with a colon: a form's "Phone:" label line), a "|" or ";" field separator, or the end of a
# sentence (".", "!" or "?" then white space, unless the word before the dot is one of the
# short abbreviations that label a value, such as "no." or "tel."; any other short word ends a
# sentence: "... ship it by ups. SSN 123-45-6789"). A short word counts only where a word
# starts (not after a dot or a slash), so "e.g.", "i.e.", "a/c." and "U.S." end nothing.
_ABBREVIATIONS = (
    "no", "nr", "num", "tel", "tlf", "ph", "mob", "fax", "ext", "ss", "cc", "acc", "st", "dr",
    "mr", "ms", "mrs", "jr", "sr", "co", "inc", "ltd", "vs", "ca",
)  # fmt: skip
_BOUNDARY_RE = re.compile(
    r"(?<!:)(?<!:\r)(?<!: )[\n\r]|[|;]|(?:[^\W\d_]{4,}|[^A-Za-z\s]|(?<![\w./])(?!(?i:"
    + "|".join(_ABBREVIATIONS)
    + r")[.!?])[^\W\d_]{1,3})[.!?](?=\s)"
)

# Every boundary match ends with one of these characters: the greedy run finds the last one.
_UP_TO_LAST_BOUNDARY_CHAR = re.compile(r"[\s\S]*[\n\r|;.!?]")


def _rust_words(words: tuple[str, ...]) -> str:
    """A case-insensitive alternation of ``words`` for Rust ``regex`` (no boundaries)."""
    escaped = ("".join("\\" + c if not c.isalnum() and c != " " else c for c in w) for w in words)
    return "(?i)(?:" + "|".join(sorted(escaped, key=len, reverse=True)) + ")"


#: Row flags for the vectorised pass: name -> a Rust regex that matches every text in which
#: the flag's words could count (looser than the rules: no word boundaries, whole text). A row
#: without a flag's match gets no context change from those words, so the per-candidate window
#: scans are skipped for it. ``ctx:<TYPE>``: the type's supporting words (before or after);
#: ``neg``: the contradicting words; ``ver``: a "v" or a "/" (a version prefix or a product
#: token before an IP address).
ROW_FLAGS: dict[str, str] = {
    **{
        f"ctx:{t.value}": _rust_words(tuple(dict.fromkeys(_BEFORE.get(t, ()) + _AFTER.get(t, ()))))
        for t in dict.fromkeys([*_BEFORE, *_AFTER])
    },
    "neg": _rust_words(_NEGATIVE),
    "ver": "(?i)v|/",
}


@lru_cache(maxsize=4096)
def row_context(flags: frozenset[str]) -> tuple[frozenset[EntityType], frozenset[EntityType]]:
    """From a row's :data:`ROW_FLAGS`: (types whose score context may change, types it may raise).

    A type outside the first set gets ``context_delta == 0`` anywhere in the row; outside the
    second, ``may_support`` is false.
    """
    support = frozenset(t for t in _T if f"ctx:{t.value}" in flags)
    change = set(support)
    if "neg" in flags:
        change |= _NEGATIVE_TYPES
    if "ver" in flags:
        change.add(_T.IP_ADDRESS)
    return frozenset(change), support


def _clause_before(text: str, start: int) -> tuple[str, int]:
    """The part of the window before ``start`` in the same clause, and its offset in ``text``."""
    lo = max(0, start - BEFORE_WINDOW)
    before = text[lo:start]
    # The cut is the end of the last boundary match. A match longer than one character holds
    # no white space, so none spans a space: a scan started just after a space finds the
    # same matches from there on as a scan from the start. Scan from the last space before
    # the last boundary character, and step back only while nothing is found.
    stop = len(before)
    while (mark := _last_boundary_char(before, stop)) >= 0:
        pos = before.rfind(" ", 0, mark) + 1
        cut = -1
        for m in _BOUNDARY_RE.finditer(before, pos):
            cut = m.end()
        if cut >= 0:
            return before[cut:], lo + cut
        stop = pos
    return before, lo


def _last_boundary_char(before: str, stop: int) -> int:
    """Index of the last character of ``before[:stop]`` a boundary can end with, or -1."""
    m = _UP_TO_LAST_BOUNDARY_CHAR.match(before, 0, stop)
    return -1 if m is None else m.end() - 1


def _clause_after(text: str, end: int) -> str:
    """The part of the window after ``end`` in the same clause."""
    after = text[end : end + AFTER_WINDOW]
    m = _BOUNDARY_RE.search(after)
    if m is None:
        return after
    return after[: m.end() - 1] if m.group()[-1] in ".!?" else after[: m.start()]


def _has_value(segment: str) -> bool:
    """Whether a segment holds a digit: another value sits between a label word and us."""
    return any(c.isdigit() for c in segment)


def _nearest(pattern: re.Pattern[str] | None, before: str) -> int:
    """Distance from the last word of ``pattern`` in ``before`` to its end; -1 if none counts."""
    if pattern is None:
        return -1
    last = None
    for m in pattern.finditer(before):
        last = m
    if last is None or _has_value(before[last.end() :]):
        return -1
    return len(before) - last.end()


def may_support(text: str, start: int, end: int, etype: EntityType) -> bool:
    """Cheap test: whether a supporting word of ``etype`` is anywhere in the windows.

    ``False`` means :func:`context_delta` cannot be positive, so a caller can skip it.
    """
    before_re, after_re = _BEFORE_RE.get(etype), _AFTER_RE.get(etype)
    if before_re is not None and before_re.search(text, max(0, start - BEFORE_WINDOW), start):
        return True
    return after_re is not None and after_re.search(text, end, end + AFTER_WINDOW) is not None


def context_delta(text: str, start: int, end: int, etype: EntityType) -> float:
    """Return the score change from the words around ``text[start:end]``.

    Context words count only in the candidate's clause (not across a line break, a ``|`` or
    ``;`` separator or a sentence end) and only when no other value (a digit) sits between the
    word and the candidate: a label names the value right after it, not every number that
    follows in the record.

    Args:
        text: The whole text.
        start: Candidate start (code points).
        end: Candidate end (exclusive).
        etype: The candidate's type.

    Returns:
        ``+BOOST`` when a supporting word is near, ``-PENALTY`` when only a contradicting one
        is (the nearest word wins when both are), else ``0``.
    """
    if etype is _T.IP_ADDRESS and _VERSION_RE.search(text[max(0, start - BEFORE_WINDOW) : start]):
        return -1.0
    before, _ = _clause_before(text, start)
    pos_dist = _nearest(_BEFORE_RE.get(etype), before)
    neg_dist = _nearest(_NEGATIVE_RE if etype in _NEGATIVE_TYPES else None, before)
    after_re = _AFTER_RE.get(etype)
    if after_re is not None:
        after = _clause_after(text, end)
        m = after_re.search(after)
        if m is not None and not _has_value(after[: m.start()]):
            dist = m.start()
            if pos_dist < 0 or dist < pos_dist:
                pos_dist = dist
    if pos_dist < 0 and neg_dist < 0:
        return 0.0
    if pos_dist < 0 or 0 <= neg_dist < pos_dist:
        return -PENALTY
    return BOOST
