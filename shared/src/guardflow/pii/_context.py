"""Context (hotword) rules: words near a candidate raise or lower its score.

As Google DLP's hotword rules do, a word from the type's list within a window of characters
before (or, for a few words like "fax", after) a candidate adds a boost; words that name an
unrelated identifier (order, invoice, ISBN, version...) subtract. Weak patterns (a bare 9-digit
number for an SSN, a local-format phone number) start below the default ``min_score`` and pass
only with a supporting word.
"""

from __future__ import annotations

import re

from guardflow.pii.entities import EntityType

__all__ = ["AFTER_WINDOW", "BEFORE_WINDOW", "BOOST", "PENALTY", "context_delta"]

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
# A "v" or "version" right before an IP-shaped value makes it a version string.
_VERSION_RE = re.compile(r"(?:\bv|\bversion\s*:?\s*|\bver\.?\s*)$", re.IGNORECASE)


def context_delta(text: str, start: int, end: int, etype: EntityType) -> float:
    """Return the score change from the words around ``text[start:end]``.

    Args:
        text: The whole text.
        start: Candidate start (code points).
        end: Candidate end (exclusive).
        etype: The candidate's type.

    Returns:
        ``+BOOST`` when a supporting word is near, ``-PENALTY`` when only a contradicting one
        is (the nearest word wins when both are), else ``0``.
    """
    before = text[max(0, start - BEFORE_WINDOW) : start]
    after = text[end : end + AFTER_WINDOW]
    if etype is _T.IP_ADDRESS and _VERSION_RE.search(before):
        return -1.0
    pos_at = -1
    pattern = _BEFORE_RE.get(etype)
    if pattern is not None:
        for m in pattern.finditer(before):
            pos_at = m.end()
    neg_at = -1
    if etype in _NEGATIVE_TYPES:
        for m in _NEGATIVE_RE.finditer(before):
            neg_at = m.end()
    if pos_at < 0:
        after_re = _AFTER_RE.get(etype)
        if after_re is not None and after_re.search(after[:AFTER_WINDOW]):
            pos_at = 0
    if pos_at < 0 and neg_at < 0:
        return 0.0
    if neg_at > pos_at:
        return -PENALTY
    return BOOST
