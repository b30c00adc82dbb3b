"""Candidate patterns: one regex per shape, valid for Rust ``regex`` (polars) and Python ``re``.

The patterns avoid look-around and back-references (Rust's linear-time engine has neither) and
bound every repetition that a failing match could re-scan, so Python's backtracking engine stays
linear on the candidate rows too. Boundaries that need look-around are checked in the
validators. Each :class:`PatternSpec` names the check that turns a regex match into zero or more
scored entities.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardflow.pii.entities import EntityType

__all__ = [
    "GATES", "PATTERNS", "PEM_BODY", "PEM_FOOTER", "PEM_HEADER", "PRIORITY", "TIER", "PatternSpec",
    "python_regex",
]  # fmt: skip

_T = EntityType


@dataclass(frozen=True)
class PatternSpec:
    """One candidate regex.

    Attributes:
        name: Identifier of the shape (names the check in :mod:`guardflow.pii._checks`).
        type: The entity type it proposes.
        regex: The pattern text (Rust- and Python-compatible).
        score: Base score of a validated match of this shape.
        prefilter: A looser pattern for the vectorised pass when ``regex`` would compile too
            large for Rust's size limit (bounded repetitions of Unicode classes), or a
            stricter one that only drops rows whose matches the check always rejects; every
            text holding a match the check accepts must match it.
        anchor: A literal every match contains (``@`` for e-mails), or ``None``. With
            ``reach``, it lets the per-row scan start near each anchor instead of trying
            ``regex`` at every position of the text.
        reach: Most characters a match can span before its anchor.
        first: A character class every match starts with, or ``None``. Python's engine finds
            no start character in a pattern that opens with an optional group or ``\b``, so
            it tries the whole pattern at every position; the per-row scan puts this class
            first, as a look-ahead (:func:`python_regex`), so most positions fail at once.
    """

    name: str
    type: EntityType
    regex: str
    score: float
    prefilter: str | None = None
    anchor: str | None = None
    reach: int = 0
    first: str | None = None


def python_regex(spec: PatternSpec) -> str:
    """The pattern for Python's ``re``: ``spec.regex`` behind a look-ahead on ``spec.first``.

    The look-ahead only passes over positions where no match can start, so the matches are
    the same; Rust's ``regex`` has no look-ahead (and needs none), so polars gets ``regex``.
    """
    if spec.first is None:
        return spec.regex
    flags = "(?i)" if spec.regex.startswith("(?i)") else ""
    return f"{flags}(?={spec.first}){spec.regex[len(flags) :]}"


_OCTET = r"[0-9]{1,3}"
#: A private key block's parts; the body's white space is ASCII so both engines agree on it.
PEM_HEADER = r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
PEM_BODY = r"[A-Za-z0-9+/= \t\r\n\f\v:,-]"
PEM_FOOTER = r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_URL_CHARS = r"[^\s<>\"'\x60{}|\\^]"

PATTERNS: tuple[PatternSpec, ...] = (
    PatternSpec(
        "email",
        _T.EMAIL_ADDRESS,
        r"[\w%+'-]{1,64}(?:\.[\w%+'-]{1,64}){0,8}@(?:[\w-]{1,63}\.){1,8}[^\W\d_]{2,24}\b",
        0.9,
        # "@", then a domain label and a dot: every character ``re`` counts as ``\w`` is
        # outside Rust's ``\s``, so this holds wherever the pattern can (Rust's ``\w`` has no
        # ``²``, Python's does).
        r"@[^\s@.]+\.",
        anchor="@",
        reach=64 + 8 * 65,  # local part: up to nine dot-separated atoms of at most 64
    ),
    PatternSpec("url", _T.URL, r"(?i)\b(?:https?|ftp|sftp|wss?)://" + _URL_CHARS + r"+", 0.7),
    PatternSpec(
        "www",
        _T.URL,
        r"(?i)\bwww\.[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,8}(?:[/?#:]" + _URL_CHARS + r"*)?",
        0.6,
    ),
    PatternSpec("ipv4", _T.IP_ADDRESS, rf"\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\b", 0.75),
    PatternSpec(
        "ipv6",
        _T.IP_ADDRESS,
        r"(?i)(?:[0-9a-f]{0,4}:){2,8}[0-9a-f]{0,4}(?:\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})?",
        0.75,
        first="[0-9a-f:]",
    ),
    PatternSpec(
        "mac",
        _T.MAC_ADDRESS,
        r"(?i)\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b|\b[0-9a-f]{2}(?:-[0-9a-f]{2}){5}\b"
        r"|\b[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}\b",
        0.8,
    ),
    PatternSpec("card", _T.CREDIT_CARD, r"\b(?:[0-9][ -]?){11,18}[0-9]\b", 0.8, first="[0-9]"),
    PatternSpec("iban", _T.IBAN_CODE, r"\b[A-Za-z]{2}[0-9]{2}(?:[ ]?[A-Za-z0-9]){11,30}\b", 0.9),
    PatternSpec("ssn_dash", _T.US_SSN, r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", 0.75),
    PatternSpec("ssn_space", _T.US_SSN, r"\b[0-9]{3} [0-9]{2} [0-9]{4}\b", 0.5),
    PatternSpec("ssn_dot", _T.US_SSN, r"\b[0-9]{3}\.[0-9]{2}\.[0-9]{4}\b", 0.4),
    PatternSpec("ssn_bare", _T.US_SSN, r"\b[0-9]{9}\b", 0.3),
    PatternSpec(
        "phone",
        _T.PHONE_NUMBER,
        r"(?:\+[ ]?|\b00[ ]?)?(?:\([0-9]{1,5}\)[ .-]?|\b)[0-9]{1,14}"
        r"(?:[ .-]{1,2}(?:\([0-9]{1,5}\)[ .-]?)?[0-9]{1,14}|\([0-9]{1,5}\)[0-9]{1,14}){0,7}"
        r"(?:[ ]?(?:x|ext\.?|extension)[ ]?[0-9]{1,6})?\b",
        0.0,
        # Every phone the check accepts has 7+ digits, at most 5 separator characters apart
        # (``) - (`` between groups): rows without such a run have no phone to validate.
        r"[0-9](?:[ .()-]{0,5}[0-9]){6}",
        first="[+(0-9]",
    ),
    PatternSpec(
        "btc",
        _T.CRYPTO,
        r"\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b|\b(?:bc1|BC1|tb1|TB1)[0-9A-Za-z]{6,87}\b",
        0.9,
    ),
    PatternSpec("aws_key_id", _T.SECRET, r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b", 0.9),
    PatternSpec(
        "github",
        _T.SECRET,
        r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36,255}\b|\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
        0.95,
    ),
    PatternSpec("slack", _T.SECRET, r"\bxox[abposr]-[A-Za-z0-9-]{10,250}", 0.9),
    PatternSpec(
        "jwt",
        _T.SECRET,
        r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        0.9,
    ),
    PatternSpec(
        "pem",
        _T.SECRET,
        PEM_HEADER + PEM_BODY + "*?" + PEM_FOOTER,
        0.99,
    ),
    PatternSpec(
        "pem_open",
        _T.SECRET,
        PEM_HEADER + r"[A-Za-z0-9+/=\r\n]*",
        0.9,
    ),
)

#: Gates for the vectorised pass: a cheap regex that matches every text any of its shapes'
#: prefilters match, so those shapes are tested only on the rows a gate lets through.
#: ``digits``: seven digits at most five separator characters apart (a card has 12+ digits
#: one separator apart, an SSN 9, a phone 7+). ``hex``: two colons with at most four hex
#: digits between (IPv6, a colon MAC), or a dashed or dotted MAC's inner group.
GATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "digits": (
        r"[0-9](?:[ .()-]{0,5}[0-9]){6}",
        ("card", "ssn_dash", "ssn_space", "ssn_dot", "ssn_bare", "phone"),
    ),
    "hex": (r":[0-9A-Fa-f]{0,4}:|-[0-9A-Fa-f]{2}-|\.[0-9A-Fa-f]{4}\.", ("ipv6", "mac")),
}

#: Overlap tiers: validated, specific shapes beat weak numeric ones whatever their length.
TIER: dict[EntityType, int] = {
    _T.SECRET: 2, _T.URL: 2, _T.EMAIL_ADDRESS: 2, _T.CREDIT_CARD: 2, _T.IBAN_CODE: 2,
    _T.CRYPTO: 2, _T.IP_ADDRESS: 2, _T.MAC_ADDRESS: 2, _T.US_SSN: 2, _T.PHONE_NUMBER: 1,
    _T.PERSON: 0, _T.LOCATION: 0, _T.ORGANIZATION: 0,
}  # fmt: skip

#: Tie-break between types claiming the same span (higher wins).
PRIORITY: dict[EntityType, int] = {
    _T.SECRET: 12, _T.CREDIT_CARD: 11, _T.IBAN_CODE: 10, _T.CRYPTO: 9, _T.EMAIL_ADDRESS: 8,
    _T.IP_ADDRESS: 7, _T.MAC_ADDRESS: 6, _T.URL: 5, _T.US_SSN: 4, _T.PHONE_NUMBER: 3,
    _T.PERSON: 2, _T.LOCATION: 1, _T.ORGANIZATION: 0,
}  # fmt: skip
