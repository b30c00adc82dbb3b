"""The vectorised column path gives exactly the per-text results, in order, for any input."""

from __future__ import annotations

import random

from guardflow.pii import Detector, EntityType
from guardflow.pii.detector import _VECTOR_MIN_ROWS

_SNIPPETS = [
    "jane.doe@example.org", "call +44 20 7946 0958", "SSN 536-22-1234", "card 4111 1111 1111 1111",
    "IBAN GB33BUKB20201555555555", "from 10.0.0.1", "peer 2001:db8::1:5", "see https://x.io/a",
    "mac 00:1A:2B:3C:4D:5E", "btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "v1.2.3.4", "order 12345",
    "Grüße 👋🏽 ", "2024-01-15 10:30:00", "AKIAABCDEFGHIJKLMNOP", "plain words only",
    "ssn 536221234", "Fax: 4155552671", "\n", "名前 ",
]  # fmt: skip


def _corpus(n: int, seed: int = 7) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = [None, "", "   "]
    for _ in range(n):
        out.append(" ".join(rng.choice(_SNIPPETS) for _ in range(rng.randint(1, 6))))
    out.append(" filler " * 5000 + _SNIPPETS[0] + " filler " * 5000 + _SNIPPETS[3])
    out.append(None)
    return out


def test_detect_many_equals_detect_on_mixed_corpus() -> None:
    texts = _corpus(300)
    assert len(texts) > _VECTOR_MIN_ROWS  # exercises the polars pre-pass
    detector = Detector()
    many = detector.detect_many(texts)
    assert many == [detector.detect(t) for t in texts]
    assert sum(len(x) for x in many) > 300


def test_none_and_empty_give_empty_lists() -> None:
    assert Detector().detect_many([None, "", None] * 20) == [[] for _ in range(60)]
    assert Detector().detect(None) == []


def test_long_text_offsets_point_at_the_entity() -> None:
    texts = _corpus(40)
    long_text = texts[-2]
    assert long_text is not None
    ents = Detector().detect_many(texts)[-2]
    assert [long_text[e.start : e.end] for e in ents] == [
        "jane.doe@example.org",
        "4111 1111 1111 1111",
    ]


def test_entity_subset_on_the_column_path() -> None:
    texts = _corpus(100, seed=3)
    detector = Detector([EntityType.EMAIL_ADDRESS])
    many = detector.detect_many(texts)
    assert {e.type for row in many for e in row} == {EntityType.EMAIL_ADDRESS}
    assert many == [detector.detect(t) for t in texts]


def test_adversarial_inputs_finish() -> None:
    # Long runs that make naive backtracking patterns quadratic; must simply complete.
    texts = ["a" * 200_000, "1 " * 100_000, "1." * 100_000, ":" * 200_000, "a@" * 100_000,
             "9" * 200_000]  # fmt: skip
    assert Detector().detect_many(texts * 2) == [[] for _ in range(12)]


def test_truncated_private_key_block_is_still_a_secret() -> None:
    text = "-----BEGIN PRIVATE KEY-----\n" + "A" * 100_000
    (entity,) = Detector().detect(text)
    assert (entity.type, entity.start, entity.end) == (EntityType.SECRET, 0, len(text))


def test_repeated_cells_get_equal_but_separate_results() -> None:
    # Repeated cells are scanned once per call; each row still gets its own list.
    text = "card 4111 1111 1111 1111, mail a@example.org"
    rows = [text, "nothing here", text] * _VECTOR_MIN_ROWS
    found = Detector().detect_many(rows)
    assert found[0] == found[2] == Detector().detect(text)
    assert [e.type for e in found[0]] == [EntityType.CREDIT_CARD, EntityType.EMAIL_ADDRESS]
    found[0].clear()
    assert len(found[2]) == 2 and len(found[-1]) == 2
