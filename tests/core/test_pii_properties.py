"""Property and robustness tests of guardflow.pii (hypothesis).

Arbitrary Unicode (astral characters, combining marks, right-to-left text), huge cells, nulls and
mixed column types never crash detection or masking, never drop or reorder a row and never change
a cell that holds no PII; spans are in bounds, sorted and non-overlapping; ``replace`` masking is
idempotent; the vectorised ``detect_many`` equals ``detect`` text by text.

Linear time: the candidate pass runs in polars (Rust ``regex``: finite automata, linear time by
construction) and the same patterns then run with Python's backtracking ``re`` on candidate
rows, so every pattern must stay linear there too. ``test_no_nested_unbounded_quantifiers``
checks the pattern text (no ``(x+)+``-like nesting, the classic catastrophic shape), and the
adversarial tests feed 10 MB of each pattern's worst-case input under a per-test timeout: a
quadratic or exponential case runs for hours and fails the timeout; nothing here asserts a
wall-clock time.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from guardflow.pii import (  # noqa: E402
    Detector,
    EntityType,
    PIIPolicy,
    detect,
    mask_records,
    mask_table,
    mask_text,
)
from guardflow.pii._patterns import PATTERNS  # noqa: E402

_T = EntityType
# derandomize: CI explores the same examples on every run, so the suite cannot turn red at random;
# run with a seed to explore more (the minimal cases below were found that way, then fixed).
FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
SLOW = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# Planted PII and near-misses (synthetic values: test card and documentation ranges).
FRAGMENTS = [
    "jane.doe@example.org",
    "+1 (415) 555-0132",
    "4111 1111 1111 1111",
    "5555-5555-5555-4444",
    "2223000048400011",
    "GB82 WEST 1234 5698 7654 32",
    "SSN 123-45-6780",
    "192.168.10.1",
    "2001:db8::8a2e:370:7334",
    "https://example.com/a?b=c",
    "www.example.co.uk/x",
    "00:1A:2B:3C:4D:5E",
    "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "AKIAIOSFODNN7EXAMPLE",
    "v1.2.3.4",
    "order 4111111111111112",
    "2024-01-31 12:00:00",
]
# Combining marks, right-to-left text, astral characters, zero-width and format characters.
ODD = ["\u0301", "\u0338", "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627", "\u200f",
       "\u202e", "\U0001f600", "\U00010348", "\U0002a6d6", "\u200b", "\ufeff", "\x00", "\n",
       "e\u0301", "\u0661\u0662\u0663"]  # fmt: skip

# Any code point but lone surrogates (not valid in UTF-8, so never in Arrow or files).
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
texts = st.lists(
    st.one_of(unicode_text, st.sampled_from(FRAGMENTS), st.sampled_from(ODD)), max_size=8
).map("".join)
maybe_text = st.one_of(st.none(), texts)
scalars = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.binary(max_size=20),
    texts,
)
nested = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.sampled_from("abcde"), kids, max_size=3)
    ),
    max_leaves=8,
)


def check_spans(text: str | None, found: list[Any]) -> None:
    """Spans in bounds, non-empty, sorted, non-overlapping, of known types."""
    if not text:
        assert found == []
        return
    end = 0
    for e in found:
        assert isinstance(e.type, EntityType)
        assert 0 <= e.start < e.end <= len(text)
        assert e.start >= end, "spans overlap or are unsorted"
        assert 0.0 <= e.score <= 1.0
        end = e.end


# --- detection ---------------------------------------------------------------------------------


@FAST
@given(maybe_text)
def test_detect_spans_are_valid(text: str | None) -> None:
    check_spans(text, detect(text))


@FAST
@given(st.lists(maybe_text, max_size=80))
def test_detect_many_equals_detect(batch: list[str | None]) -> None:
    # 32+ texts take the polars pre-pass; fewer skip it: both must give detect()'s answer.
    detector = Detector()
    found = detector.detect_many(batch)
    assert len(found) == len(batch)
    assert found == [detector.detect(t) for t in batch]
    for text, spans in zip(batch, found, strict=True):
        check_spans(text, spans)


@SLOW
@given(st.lists(maybe_text, min_size=32, max_size=64))
def test_detect_many_equals_detect_on_vectorised_path(batch: list[str | None]) -> None:
    detector = Detector(context=False, min_score=0.3)
    assert detector.detect_many(batch) == [detector.detect(t) for t in batch]


# --- masking -----------------------------------------------------------------------------------


@FAST
@given(texts)
def test_replace_masking_is_idempotent(text: str) -> None:
    once = mask_text(text)
    assert once is not None
    assert mask_text(once) == once


@FAST
@given(texts)
def test_masked_text_rescanned_holds_no_pii(text: str) -> None:
    masked = mask_text(text)
    assert masked is not None
    assert detect(masked) == []


def test_glued_phone_minimal_case() -> None:
    # A "+" number glued to an e-mail is found with it, so masking twice changes nothing.
    once = mask_text("0@0.AA+12(01200)0000")
    assert once is not None and mask_text(once) == once


def test_combining_mark_boundary_minimal_case() -> None:
    # Rust's \b counts U+0300 as a word character, Python's re does not: the vectorised
    # prefilter (32+ rows) must still let re see the card after it.
    batch = ["0"] * 31 + ["\u03002200000020411348"]
    detector = Detector()
    assert detector.detect_many(batch) == [detector.detect(t) for t in batch]


@SLOW
@given(st.lists(st.tuples(maybe_text, st.floats(allow_nan=False), st.booleans()), max_size=50))
def test_mask_table_keeps_rows_and_other_columns(rows: list[tuple[Any, float, bool]]) -> None:
    if not rows:
        return  # read_table rejects an input without rows
    table = pa.table(
        {
            "id": list(range(len(rows))),
            "text": pa.array([r[0] for r in rows], pa.string()),
            "x": [r[1] for r in rows],
            "flag": [r[2] for r in rows],
        }
    )
    policy = PIIPolicy.model_validate({"free_text_columns": ["text"]})
    out, report = mask_table(table, policy)
    assert out.num_rows == table.num_rows
    assert out.column_names == table.column_names
    for name in ("id", "x", "flag"):
        assert out.column(name).to_pylist() == table.column(name).to_pylist()
    for before, after in zip(table.column("text").to_pylist(), out.column("text").to_pylist(),
                             strict=True):  # fmt: skip
        if before is None:
            assert after is None
        elif not detect(before):
            assert after == before
    assert report.rows_scanned == len(rows)
    assert report.rows_touched <= len(rows)


@SLOW
@given(st.lists(nested, max_size=30))
def test_mask_records_keeps_rows_and_untouched_cells(cells: list[Any]) -> None:
    records = [{"id": i, "v": c} for i, c in enumerate(cells)]
    out, report = mask_records(records, None)
    assert [r["id"] for r in out] == list(range(len(cells)))
    assert [r["v"] for r in records] == cells  # the input is not modified
    for before, after in zip(cells, (r["v"] for r in out), strict=True):
        _same_shape(before, after)
    assert report.rows_scanned == len(cells)


def _same_shape(before: Any, after: Any) -> None:
    """Containers keep their keys and length; a leaf changes only if it held PII."""
    if isinstance(before, dict):
        assert isinstance(after, dict) and list(after) == list(before)
        for k in before:
            _same_shape(before[k], after[k])
    elif isinstance(before, list):
        assert isinstance(after, list) and len(after) == len(before)
        for b, a in zip(before, after, strict=True):
            _same_shape(b, a)
    elif before is None:
        assert after is None
    elif isinstance(before, str):
        if not detect(before):
            assert after == before
    elif not detect(str(before)):  # ints, floats, bools, bytes: scanned as their str form
        assert after == before and type(after) is type(before)


def test_huge_cells_are_masked_without_losing_rows() -> None:
    filler = ("\u05e9\u05dc\u05d5\u05dd e\u0301 \U0001f600 lorem ipsum 42 " * 40_000)[:1_000_000]
    cells = [filler + " mail jane.doe@example.org", None, filler, "card 4111 1111 1111 1111"]
    out, report = mask_records([{"t": c, "n": i} for i, c in enumerate(cells)], None)
    assert [r["n"] for r in out] == [0, 1, 2, 3]
    assert out[0]["t"].endswith(" mail <EMAIL_ADDRESS>")
    assert out[1]["t"] is None and out[2]["t"] == filler
    assert out[3]["t"] == "card <CREDIT_CARD>"
    table, _ = mask_table(pa.table({"t": cells}), None)
    assert table.column("t").to_pylist() == [r["t"] for r in out]
    assert report.counts["t"] == {"CREDIT_CARD": 1, "EMAIL_ADDRESS": 1}


# --- linear time -------------------------------------------------------------------------------


def _nested_unbounded(regex: str) -> list[str]:
    """Repeats of more than one item that contain an unbounded repeat: ``(x+)+``, ``(x*){2,9}``."""
    parser: Any = getattr(re, "_parser", None)
    if parser is None:  # pragma: no cover - Python < 3.11
        import sre_parse as parser
    repeats = {parser.MAX_REPEAT, parser.MIN_REPEAT, getattr(parser, "POSSESSIVE_REPEAT", None)}
    unbounded = parser.MAXREPEAT
    bad: list[str] = []

    def walk(items: Any, outer: bool) -> None:
        for op, arg in items:
            if op in repeats:
                low, high, sub = arg
                if outer and high == unbounded:
                    bad.append(f"unbounded repeat inside a repeat ({low},{high})")
                walk(sub, outer or high > 1)
            elif op is parser.SUBPATTERN:
                walk(arg[-1], outer)
            elif op is parser.BRANCH:
                for branch in arg[1]:
                    walk(branch, outer)

    walk(parser.parse(regex), False)
    return bad


def test_nested_quantifier_check_can_fail() -> None:
    assert _nested_unbounded(r"(a+)+b")
    assert _nested_unbounded(r"(?:x|y*)*")
    assert _nested_unbounded(r"(?:\.[a-z]+){0,8}")
    assert not _nested_unbounded(r"(?:\.[a-z]{1,63}){0,8}[a-z]+")


@pytest.mark.parametrize("spec", PATTERNS, ids=lambda s: s.name)
def test_no_nested_unbounded_quantifiers(spec: Any) -> None:
    for regex in filter(None, (spec.regex, spec.prefilter)):
        assert _nested_unbounded(regex) == [], spec.name


MB = 1_000_000
# (types under test, repeated unit): each pattern's worst shapes, and dense valid entities.
ADVERSARIAL = [
    ([_T.EMAIL_ADDRESS], "a"),
    ([_T.EMAIL_ADDRESS], "a@"),
    ([_T.EMAIL_ADDRESS], "a.a@b."),
    ([_T.EMAIL_ADDRESS], "a@b.co "),
    ([_T.URL], "http://"),
    ([_T.URL], "www."),
    ([_T.URL], "http://a.io "),
    ([_T.IP_ADDRESS], "1."),
    ([_T.IP_ADDRESS], "10.0.0.1 "),
    ([_T.IP_ADDRESS, _T.MAC_ADDRESS], "ab:"),
    ([_T.IP_ADDRESS], ":"),
    ([_T.MAC_ADDRESS], "ab-"),
    ([_T.MAC_ADDRESS], "abcd."),
    ([_T.CREDIT_CARD, _T.US_SSN, _T.PHONE_NUMBER], "1"),
    ([_T.CREDIT_CARD, _T.US_SSN, _T.PHONE_NUMBER], "1 "),
    ([_T.CREDIT_CARD, _T.PHONE_NUMBER], "1-"),
    ([_T.US_SSN], "123-45-"),
    ([_T.PHONE_NUMBER], "(1)"),
    ([_T.PHONE_NUMBER], "+1 "),
    ([_T.PHONE_NUMBER], "00 "),
    ([_T.IBAN_CODE], "AB12"),
    ([_T.IBAN_CODE], "AB12 "),
    ([_T.CRYPTO], "1A"),
    ([_T.CRYPTO], "bc1q"),
    ([_T.SECRET], "AKIA"),
    ([_T.SECRET], "ghp_a"),
    ([_T.SECRET], "xoxb-"),
    ([_T.SECRET], "eyJ"),
    ([_T.SECRET], "eyJhbGci."),
    ([_T.SECRET], "-----BEGIN "),
    ([_T.SECRET], "-----BEGIN RSA PRIVATE KEY-----"),
    ([_T.SECRET], "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n"),
]


# Slow by design (10 MB each): `make test` runs them once, in the Airflow environment. The timeout
# only catches a super-linear case (hours), never a slow machine.
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("types", "unit"), ADVERSARIAL, ids=lambda v: repr(v)[:24])
def test_adversarial_10mb_per_pattern(types: list[EntityType], unit: str) -> None:
    text = (unit * (10 * MB // len(unit) + 1))[: 10 * MB]
    check_spans(text, Detector(types).detect(text))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_adversarial_10mb_all_patterns_together() -> None:
    # Every shape in one 10 MB cell through the default detector: overlap resolution and
    # context scoring must stay linear too (dense valid entities included).
    units = [case[1] for case in ADVERSARIAL]
    run = 10 * MB // len(units)
    text = " ".join((u * (run // len(u) + 1))[:run] for u in units)
    check_spans(text, Detector().detect(text))


_PEM_PARTS = st.lists(
    st.sampled_from(
        [
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----",
            "-----END RSA PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
            "MIIBOgIBAAJBAK",
            "\n",
            " ",
            "\x1c",
            "#",
            "é",
        ]
    ),
    max_size=12,
)


@FAST
@given(_PEM_PARTS)
def test_linear_pem_finder_equals_the_regex(parts: list[str]) -> None:
    # The pem shape is searched header by header (linear); it must find what finditer finds.
    from guardflow.pii.detector import _pem_matches

    spec = next(p for p in PATTERNS if p.name == "pem")
    pattern = re.compile(spec.regex)
    text = "".join(parts)
    assert [m.span() for m in _pem_matches(spec, pattern, text)] == [
        m.span() for m in pattern.finditer(text)
    ]


@pytest.mark.timeout(120)
def test_pem_headers_after_a_footer_stay_linear() -> None:
    # A footer first, then 200,000 headers without one: each header's body is measured once.
    text = "-----END RSA PRIVATE KEY-----\n" + "-----BEGIN RSA PRIVATE KEY-----\nAB\n" * 200_000
    found = Detector([_T.SECRET]).detect(text)
    assert found and all(e.type is _T.SECRET for e in found)
