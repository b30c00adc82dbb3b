"""The Arrow column path (``Detector.detect_column``) and the row pre-pass: same entities."""

from __future__ import annotations

import pyarrow as pa

from guardflow.pii import Detector, PIIPolicy, mask_table
from guardflow.pii.detector import _VECTOR_MIN_ROWS
from guardflow.pii.entities import PATTERN_TYPES

TEXTS: list[str | None] = [
    "SSN 123-45-6780 and card 4111 1111 1111 1111",
    None,
    "",
    "a@b.c",  # shorter than any entity
    "call 212-555-0143 tomorrow",
    "nothing to see here, 3 items for $12.50 at 10:30",
    "ip 10.0.0.1 version v1.2.3.4",
    "number 123456789 alone",  # a bare 9-digit SSN only counts with a context word
    "ssn: 123456789",
    "ticket 212-555-0143",  # a contradicting word, no supporting one
    "mail jane.doe@example.org",
    "Tel. +44 20 7946 0958",
] * 4


def test_detect_column_matches_detect_many_and_detect() -> None:
    detector = Detector()
    assert len(TEXTS) > _VECTOR_MIN_ROWS
    expected = [detector.detect(t) for t in TEXTS]
    assert detector.detect_many(TEXTS) == expected
    rows, texts, found = detector.detect_column(pa.array(TEXTS, pa.string()))
    assert rows == [i for i, e in enumerate(expected) if e]
    assert texts == [TEXTS[i] for i in rows]
    assert found == [expected[i] for i in rows]
    assert any(e.type.value == "US_SSN" for f in found for e in f)


def test_detect_column_on_chunked_large_strings() -> None:
    detector = Detector()
    chunked = pa.chunked_array([TEXTS[:7], TEXTS[7:]], pa.large_string())
    rows, _, found = detector.detect_column(chunked)
    assert rows == [i for i, t in enumerate(TEXTS) if detector.detect(t)]
    assert found == [detector.detect(TEXTS[i]) for i in rows]


def test_row_context_flags_do_not_change_scores() -> None:
    # Without the row flags (context on everywhere) and with them, the same entities and scores.
    detector = Detector()
    for text in TEXTS:
        if text:
            every = (detector._all_shapes, *detector._all_context)
            assert detector._scan(text, *every) == detector.detect_many([text] * 40)[0]


def test_mask_table_masks_only_rows_with_entities_and_keeps_type() -> None:
    table = pa.table({"t": pa.array(TEXTS, pa.large_string()), "n": list(range(len(TEXTS)))})
    out, report = mask_table(table, PIIPolicy.model_validate({"free_text_columns": ["t"]}))
    assert out.schema.field("t").type == pa.large_string()
    values = out.column("t").to_pylist()
    assert values[1] is None and values[2] == "" and values[3] == "a@b.c"
    assert values[5] == TEXTS[5]
    assert values[0] == "SSN <US_SSN> and card <CREDIT_CARD>"
    assert report.rows_scanned == len(TEXTS)
    assert report.rows_touched == sum(1 for t in TEXTS if Detector().detect(t))


def test_every_gate_lets_through_each_row_its_shapes_match() -> None:
    # A gate must match every text its shapes' prefilters match, or the vectorised pass would
    # skip rows that detect() finds: checked on hard numbers and hex next to each shape's own
    # positives (cards, SSNs, phones, IPv6, MACs in every separator style).
    import polars as pl

    from guardflow.pii._patterns import GATES

    detector = Detector()
    texts = [
        "4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "536-22-1234",
        "536 22 1234", "536.22.1234", "536221234", "(201) 555-0123", "+44 20 7946 0958",
        "+1-202-555-0147", "0049 30 901820", "2001:db8::8a2e:370:7334", "fe80::1",
        "::ffff:10.0.0.1", "00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e",
        "AA:BB:CC:DD:EE:FF", "1:2", "12-34", "v1.2.3.4", "x" * 40,
    ]  # fmt: skip
    series = pl.Series("t", texts)
    for gate, shapes in GATES.values():
        through = series.str.contains(gate)
        for shape in shapes:
            hits = series.str.contains(detector._prefilter[shape])
            missed = [t for t, h, g in zip(texts, hits, through, strict=True) if h and not g]
            assert missed == [], shape
            assert hits.any(), shape  # the sample exercises every gated shape


def test_first_pass_union_lets_through_each_row_any_prefilter_matches() -> None:
    # The first vectorised pass keeps only the rows the union regex matches: it must match
    # every text that any shape's prefilter matches, for every subset of entity types.
    import polars as pl

    texts = [
        "mail jane.doe@example.org", "see https://example.com/x", "www.example.co.uk/path",
        "host 10.0.0.1", "IBAN GB82 WEST 1234 5698 7654 32", "536-22-1234", "536 22 1234",
        "536.22.1234", "ssn 536221234", "(201) 555-0123",
        "4111 1111 1111 1111", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a" * 36, "xoxb-1234567890-abcdef", "eyJhbGciOi.eyJzdWIiOi.sig",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
        "fe80::1", "00-1A-2B-3C-4D-5E", "plain words only", "",
    ]  # fmt: skip
    series = pl.Series("t", texts)
    detectors = [Detector(), *(Detector([t]) for t in PATTERN_TYPES)]
    for detector in detectors:
        kept = series.str.contains(detector._any_candidate)
        for name, prefilter in detector._prefilter.items():
            hits = series.str.contains(prefilter)
            missed = [t for t, h, k in zip(texts, hits, kept, strict=True) if h and not k]
            assert missed == [], (detector.entities, name)
            assert hits.any(), name  # the sample exercises every shape
    assert not series.str.contains(Detector()._any_candidate)[texts.index("plain words only")]


def test_lone_surrogates_in_a_column_keep_rows_and_offsets() -> None:
    # A JSON "\ud83d" escape decodes to a lone surrogate, which UTF-8 (and so polars) cannot
    # hold: the vectorised pass must still run, with the same result as one text at a time.
    texts = [f"hi \ud83d mail a{i}@example.org \udc00 ip 10.0.0.{i % 250}" for i in range(40)]
    texts += [None, "", "nothing"]
    found = Detector().detect_many(texts)
    assert len(found) == len(texts)
    assert found == [Detector().detect(t) for t in texts]
    assert [texts[0][e.start : e.end] for e in found[0]] == ["a0@example.org", "10.0.0.0"]


def test_detect_column_repeated_cells_get_separate_lists() -> None:
    text = "ssn 123-45-6780 ip 10.0.0.1"
    rows, texts, entities = Detector().detect_column(pa.array([text, None, text] * 20))
    assert rows == [i for i in range(60) if i % 3 != 1] and set(texts) == {text}
    entities[0].clear()
    assert all(len(e) == 2 for e in entities[1:])
