"""The detection engine: vectorised candidate pass, validators, context, overlap resolution.

:meth:`Detector.detect_many` runs each entity type's candidate regex once over the whole column
with polars (Rust ``regex``: linear time, no backtracking), so only rows that hold a candidate
reach Python. On those rows the same patterns run with :mod:`re` to get offsets (polars gives
matches, not positions), the checks in :mod:`guardflow.pii._checks` validate each match, the
context rules adjust its score, and overlaps are resolved: validated specific types first, then
the longer span, then the higher score, then type priority. Offsets are Python ``str`` indices,
i.e. Unicode code points.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from guardflow.pii._checks import CHECKS, PENDING, Check, pending_cap, phone_regional
from guardflow.pii._context import ROW_FLAGS, context_delta, may_support, row_context
from guardflow.pii._patterns import (
    GATES,
    PATTERNS,
    PEM_BODY,
    PEM_FOOTER,
    PEM_HEADER,
    PRIORITY,
    TIER,
    PatternSpec,
    python_regex,
)
from guardflow.pii.entities import NER_TYPES, PATTERN_TYPES, Entity, EntityType

__all__ = ["Detector", "detect"]

#: Below this many texts the polars pre-pass costs more than it saves.
_VECTOR_MIN_ROWS = 32

#: No entity is shorter than this many characters (the shortest shape is an e-mail address
#: such as ``a@b.cd``; phones need 7 digits, IPv4 7 characters); cells of fewer UTF-8 bytes
#: skip detection in the vectorised pass.
_MIN_CHARS = 6

_Compiled = tuple[PatternSpec, "re.Pattern[str]", Check]
#: What to scan in a row: the active shapes' compiled patterns, the types context may change,
#: the types context may raise.
_Plan = tuple[tuple[_Compiled, ...], frozenset[EntityType], frozenset[EntityType]]


class Detector:
    """Finds PII entities in text: e-mails, phones, cards, IBANs, SSNs, IPs, URLs, MACs, ...

    Args:
        entities: Types to detect; ``None`` means every pattern type (plus the NER types when
            ``ner`` is true). NER types are ignored unless ``ner`` is true.
        context: Apply context-word rules (a nearby "ssn", "phone", "card"... raises a
            candidate's score, "order", "invoice", "version"... lowers it). Without context,
            weak shapes (bare 9-digit SSNs, local-format phone numbers) never reach the default
            ``min_score``.
        ner: Also run the NER stage (Presidio + spaCy, ``ner`` extra) for PERSON, LOCATION and
            ORGANIZATION.
        min_score: Entities scoring below this are dropped.

    Examples:
        >>> d = Detector([EntityType.US_SSN, EntityType.CREDIT_CARD])
        >>> text = "SSN 123-45-6780, card 4111 1111 1111 1111"
        >>> [(e.type.value, text[e.start : e.end]) for e in d.detect(text)]
        [('US_SSN', '123-45-6780'), ('CREDIT_CARD', '4111 1111 1111 1111')]
    """

    def __init__(
        self,
        entities: Iterable[EntityType] | None = None,
        *,
        context: bool = True,
        ner: bool = False,
        min_score: float = 0.5,
    ) -> None:
        if entities is None:
            chosen = set(PATTERN_TYPES) | (set(NER_TYPES) if ner else set())
        else:
            chosen = {EntityType(e) for e in entities}
        self.entities: frozenset[EntityType] = frozenset(chosen)
        self.context = context
        self.ner = ner and bool(self.entities & set(NER_TYPES))
        self.min_score = min_score
        # Specific (tier-2) shapes first: a weaker candidate wholly inside one they found can
        # never win overlap resolution, so :meth:`_scan` skips it without validating it.
        self._compiled: list[_Compiled] = sorted(
            (
                (spec, re.compile(python_regex(spec)), CHECKS[spec.name])
                for spec in PATTERNS
                if spec.type in self.entities
            ),
            key=lambda c: -TIER[c[0].type],
        )
        # One prefilter regex per shape, so a row is re-scanned in Python only for the shapes
        # that the vectorised pass found in it.
        self._prefilter: dict[str, str] = {
            spec.name: _vector_form(spec.prefilter or spec.regex) for spec, _, _ in self._compiled
        }
        # Every row any prefilter matches matches this (a gate matches every row its shapes'
        # prefilters match, see ``GATES``), so it can drop rows before the per-shape pass.
        gated = {n for _, shapes in GATES.values() for n in shapes}
        self._any_candidate = "|".join(
            [f"(?:{rx})" for name, rx in self._prefilter.items() if name not in gated]
            + [f"(?:{rx})" for rx, shapes in GATES.values() if set(shapes) & set(self._prefilter)]
        )
        self._all_shapes = tuple(self._compiled)
        self._all_context = frozenset(EntityType), frozenset(EntityType)

    def __repr__(self) -> str:
        names = ",".join(sorted(t.value for t in self.entities))
        return (
            f"Detector(entities=[{names}], context={self.context}, ner={self.ner}, "
            f"min_score={self.min_score})"
        )

    def detect(self, text: str | None) -> list[Entity]:
        """Return the entities in ``text``, sorted by start, non-overlapping.

        Args:
            text: The text; ``None`` or empty gives ``[]``.

        Returns:
            Entities with code-point offsets into ``text``.
        """
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str | None]) -> list[list[Entity]]:
        """Return the entities of each text (the vectorised path for a column).

        Args:
            texts: Texts; ``None`` and empty strings give ``[]``.

        Returns:
            One sorted, non-overlapping entity list per input, in input order. The result is
            the same as ``[self.detect(t) for t in texts]``.
        """
        results: list[list[Entity]] = [[] for _ in texts]
        rows = [i for i, t in enumerate(texts) if isinstance(t, str) and t]
        if not rows:
            return results
        if self._compiled:
            if len(rows) < _VECTOR_MIN_ROWS:
                every = (self._all_shapes, *self._all_context)
                for i in rows:
                    text = texts[i]
                    assert text is not None
                    results[i] = self._scan(text, *every)
            else:
                from guardflow._optional import require

                pl = require("polars", "pii")
                series = _series(pl, [texts[i] for i in rows])
                picked, plans = self._candidates(series)
                # Repeated cells (templated notes, log lines) are scanned once per call.
                seen: dict[str, list[Entity]] = {}
                for k, plan in zip(picked, plans, strict=True):
                    text = texts[rows[k]]
                    assert text is not None
                    hits = seen.get(text)
                    if hits is None:
                        results[rows[k]] = seen[text] = self._scan(text, *plan)
                    else:
                        results[rows[k]] = list(hits)
        if self.ner:
            self._merge_ner(texts, rows, results)
        return results

    def detect_column(self, column: Any) -> tuple[list[int], list[str], list[list[Entity]]]:
        """Detect in an Arrow string array/chunked array, materialising only candidate rows.

        The prefilters run over the Arrow buffers (polars, no Python strings); only rows that
        hold a candidate become Python strings. NER (which needs every text) goes through
        :meth:`detect_many` instead.

        Args:
            column: A ``pyarrow`` (chunked) array of strings, or a polars string Series.

        Returns:
            ``(rows, texts, entities)`` for the rows with at least one entity: row positions
            in ``column``, their texts and their sorted, non-overlapping entities.
        """
        from guardflow._optional import require

        pl = require("polars", "pii")
        series = column if isinstance(column, pl.Series) else pl.Series("t", column)
        if series.dtype != pl.String:
            series = series.cast(pl.String)
        if self.ner:
            texts = series.to_list()
            found = self.detect_many(texts)
            hit = [i for i, f in enumerate(found) if f]
            return hit, [texts[i] for i in hit], [found[i] for i in hit]
        rows: list[int] = []
        texts_out: list[str] = []
        entities: list[list[Entity]] = []
        if not self._compiled or series.len() == 0:
            return rows, texts_out, entities
        picked, plans = self._candidates(series)
        texts = series.gather(picked).to_list() if picked else []
        seen: dict[str, list[Entity]] = {}  # repeated cells are scanned once per call
        for k, text, plan in zip(picked, texts, plans, strict=True):
            earlier = seen.get(text)
            if earlier is None:
                hits = seen[text] = self._scan(text, *plan)
            else:
                hits = list(earlier)
            if hits:
                rows.append(k)
                texts_out.append(text)
                entities.append(hits)
        return rows, texts_out, entities

    def _candidates(self, series: Any) -> tuple[list[int], list[_Plan]]:
        """Rows of a polars string Series holding a candidate, each with its scan plan.

        A first polars pass keeps the rows the union of the prefilters matches (nulls, empty
        and short cells and text without candidates go); on those, a second computes which
        shapes' prefilters match and which context flags
        (:data:`~guardflow.pii._context.ROW_FLAGS`) hold, as one bit mask per row.
        """
        import polars as pl

        names = list(self._prefilter)
        flags = list(ROW_FLAGS) if self.context else []

        def bits(shapes: list[str]) -> pl.Expr:
            return pl.sum_horizontal(
                pl.lit(0, pl.Int64),
                *(
                    pl.col("t").str.contains(self._prefilter[n]).fill_null(False).cast(pl.Int64)
                    * (1 << names.index(n))
                    for n in shapes
                ),
            )

        # One regex, the union of the prefilters (a gate standing in for the shapes behind
        # it), drops the rows with no candidate in one pass: most of a notes column. The
        # per-shape bits then run on the rows left.
        frame = (
            pl.DataFrame({"t": series})
            .with_row_index("i")
            .filter(
                (pl.col("t").str.len_bytes() >= _MIN_CHARS)
                & pl.col("t").str.contains(self._any_candidate)
            )
            .with_columns(bits(names).alias("m"))
            .filter(pl.col("m") != 0)
        )
        if flags:  # context flags: only on the rows that hold a candidate
            flag_bits = [
                pl.col("t").str.contains(ROW_FLAGS[f]).cast(pl.Int64) * (1 << (len(names) + j))
                for j, f in enumerate(flags)
            ]
            frame = frame.select(pl.col("i"), pl.col("m") + pl.sum_horizontal(flag_bits))
        picked = frame.get_column("i").to_list()
        plans: dict[int, _Plan] = {}
        out: list[_Plan] = []
        for mask in frame.get_column("m").to_list():
            plan = plans.get(mask)
            if plan is None:
                shapes = tuple(c for i, c in enumerate(self._compiled) if mask >> i & 1)
                row_flags = frozenset(
                    f for j, f in enumerate(flags) if mask >> (len(names) + j) & 1
                )
                plan = plans[mask] = (shapes, *row_context(row_flags))
            out.append(plan)
        return picked, out

    def _scan(
        self,
        text: str,
        active: tuple[_Compiled, ...],
        change: frozenset[EntityType],
        support: frozenset[EntityType],
    ) -> list[Entity]:
        """Find, validate, score and resolve candidates of the ``active`` patterns in one text.

        ``change``: the types whose score context words may change in this text; ``support``:
        those it may raise (from the row flags; every type when unknown).
        """
        found: list[Entity] = []
        context = self.context
        min_score = self.min_score
        tier = _TOP_TIER
        taken = b""
        for spec, pattern, check in active:
            etype = spec.type
            if TIER[etype] < tier:  # entering a weaker tier: what the stronger ones keep
                tier = TIER[etype]
                found = _resolve(found)
                taken = _coverage(found, len(text))
            ctx = context and etype in change
            finder = _FINDERS.get(spec.name)
            if finder is not None:
                matches = finder(spec, pattern, text)
            elif spec.anchor is None:
                matches = pattern.finditer(text)  # no generator around it: most shapes
            else:
                matches = _matches(spec, pattern, text)
            for m in matches:
                if taken and taken.find(0, m.start(), m.end()) < 0 and m.end() > m.start():
                    continue  # wholly inside a kept stronger entity: it cannot win
                pending_done = False
                for start, end, base in check(text, m.start(), m.end(), spec.score):
                    # A national-format phone (PENDING): parse it under other regions only
                    # when the best regional score could pass, and keep the first that does.
                    if base == PENDING:
                        if pending_done:
                            continue
                        cap = pending_cap(text, start, end)
                        if min_score > cap and not (
                            ctx and etype in support and may_support(text, start, end, etype)
                        ):
                            continue
                    delta = context_delta(text, start, end, etype) if ctx else 0.0
                    if base == PENDING:
                        if cap + delta < min_score:
                            continue
                        base = min(cap, phone_regional(text[start:end]))
                        if base <= 0:
                            continue
                        pending_done = True
                    score = round(min(1.0, max(0.0, base + delta)), 4)
                    if score >= min_score and end > start:
                        found.append(Entity(etype, start, end, score))
        return _resolve(found)

    def _merge_ner(
        self, texts: Sequence[str | None], rows: list[int], results: list[list[Entity]]
    ) -> None:
        """Add NER entities that do not overlap a pattern entity."""
        from guardflow.pii._ner import ner_entities

        # spaCy needs UTF-8 too: lone surrogates become U+FFFD, one for one (offsets hold).
        batch = [_SURROGATE.sub("\ufffd", t) for t in (texts[i] for i in rows) if t is not None]
        for i, ner_found in zip(rows, ner_entities(batch), strict=True):
            extra = [e for e in ner_found if e.type in self.entities and e.score >= self.min_score]
            if extra:
                results[i] = _resolve(results[i] + extra)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _series(pl: Any, texts: list[str | None]) -> Any:
    """A polars string Series of ``texts`` for the vectorised pass.

    Arrow strings are UTF-8, which cannot hold a lone surrogate (``"\\ud83d"`` decoded from
    JSON); such texts go in with each surrogate replaced by U+FFFD, one code point for one, so
    row positions and offsets are unchanged. Both are non-ASCII and non-word characters for
    every prefilter, and the per-row scan still runs on the original text.
    """
    try:
        return pl.Series("t", texts, dtype=pl.String)
    except UnicodeEncodeError:
        clean = [t if t is None else _SURROGATE.sub("\ufffd", t) for t in texts]
        return pl.Series("t", clean, dtype=pl.String)


def _vector_form(regex: str) -> str:
    """A shape's regex for the vectorised pass: it must match every text ``re`` would.

    Rust's Unicode ``\\b`` counts combining marks (and a few other characters) as word
    characters where Python's ``re`` does not, so a card after U+0300 has a boundary for
    ``re`` and none for Rust. ASCII ``\\b`` (every non-ASCII character a non-word one) holds
    wherever either engine's does, next to the ASCII characters these shapes have at their
    edges. Case-insensitive shapes may start with a non-ASCII fold of a letter (U+017F for
    ``s``), so their boundaries are dropped: looser, never stricter.
    """
    if regex.startswith("(?i)"):
        return regex.replace(r"\b", "")
    return regex.replace(r"\b", r"(?-u:\b)")


def _matches(spec: PatternSpec, pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, started near each anchor when the shape has one.

    Every match contains the anchor at most ``spec.reach`` characters after its start, and
    there is no anchor between the previous match's end and the next anchor, so a search from
    ``anchor - reach`` finds the same leftmost match as the full scan without trying the
    pattern at every position. A match holds one anchor, so when none holds the anchor at
    ``i`` the next one starts after ``i``; the search stops ``2 * reach`` past the anchor
    (longer than any match's tail). Windows of dense anchors overlap, so once the windows
    searched add up to a few times the text, the rest is one plain scan (linear either way).
    """
    anchor = spec.anchor
    if anchor is None:
        yield from pattern.finditer(text)
        return
    pos = 0
    budget = 4 * (len(text) + spec.reach)
    while True:
        i = text.find(anchor, pos)
        if i < 0:
            return
        lo, hi = max(pos, i - spec.reach), i + 2 * spec.reach
        budget -= min(hi, len(text)) - lo
        if budget < 0:
            yield from pattern.finditer(text, pos)
            return
        m = pattern.search(text, lo, hi)
        if m is None:
            pos = i + 1
            continue
        yield m
        pos = m.end() if m.end() > m.start() else m.end() + 1


_TOP_TIER = max(TIER.values())


def _coverage(kept: list[Entity], size: int) -> bytes:
    """One byte per code point of a text: 1 where a kept entity lies (empty when none)."""
    if not kept:
        return b""
    taken = bytearray(size)
    for e in kept:
        taken[e.start : e.end] = b"\x01" * (e.end - e.start)
    return bytes(taken)


_PEM_HEADER = re.compile(PEM_HEADER)
_PEM_FOOTER = re.compile(PEM_FOOTER)
_PEM_RUN = re.compile(PEM_BODY + "*")


def _pem_matches(spec: PatternSpec, pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """The ``pem`` shape's matches, in linear time.

    The pattern's lazy body scans from every header to the end of the text when no footer
    follows (quadratic over many headers). Here each header's body run is measured once: the
    match, if any, ends at the first footer inside that run, and a header that starts inside a
    run which held no footer cannot match either (its body is the rest of the same run).
    """
    del spec
    pos = 0
    while (head := _PEM_HEADER.search(text, pos)) is not None:
        run = _PEM_RUN.match(text, head.end())
        assert run is not None  # a ``*`` run always matches, maybe empty
        foot = _PEM_FOOTER.search(text, head.end(), run.end())
        if foot is None:
            pos = max(run.end(), head.start() + 1)
            continue
        m = pattern.match(text, head.start(), foot.end())
        if m is not None:
            yield m
            pos = m.end()
        else:
            pos = head.start() + 1


_FINDERS = {"pem": _pem_matches}


def _resolve(found: list[Entity]) -> list[Entity]:
    """Keep non-overlapping entities: tier, then length, then score, then priority."""
    if len(found) < 2:
        return found
    ranked = sorted(
        set(found),
        key=lambda e: (-TIER[e.type], -(e.end - e.start), -e.score, -PRIORITY[e.type], e.start),
    )
    # One flag per code point taken: linear in the spans' total length (checking each span
    # against every kept one was quadratic: 10 MB of IP addresses ran for hours).
    taken = bytearray(max(e.end for e in ranked))
    kept: list[Entity] = []
    for e in ranked:
        if taken.find(1, e.start, e.end) < 0:
            kept.append(e)
            taken[e.start : e.end] = b"\x01" * (e.end - e.start)
    kept.sort(key=lambda e: (e.start, e.end))
    return kept


def detect(
    text: str | None,
    *,
    entities: Iterable[EntityType] | None = None,
    context: bool = True,
    min_score: float = 0.5,
) -> list[Entity]:
    """Detect entities in one text with a :class:`Detector` of the given settings.

    Args:
        text: The text (``None`` or empty gives ``[]``).
        entities: Types to detect (default: every pattern type).
        context: Apply context-word rules.
        min_score: Minimum score kept.

    Returns:
        Sorted, non-overlapping entities with code-point offsets.

    Examples:
        >>> [e.type.value for e in detect("from 10.0.0.1 to jane@example.org")]
        ['IP_ADDRESS', 'EMAIL_ADDRESS']
    """
    return _default(entities, context, min_score).detect(text)


_CACHE: dict[tuple[frozenset[EntityType] | None, bool, float], Detector] = {}


def _default(entities: Iterable[EntityType] | None, context: bool, min_score: float) -> Detector:
    key = (None if entities is None else frozenset(entities), context, min_score)
    detector = _CACHE.get(key)
    if detector is None:
        detector = _CACHE[key] = Detector(key[0], context=context, min_score=min_score)
    return detector
