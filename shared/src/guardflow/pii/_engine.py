"""The masking engine: one column (or one nested path set) at a time, whole batches at once.

Columns known to hold one entity type are transformed whole, with no detection. Free-text columns
go through :meth:`Detector.detect_many` once per batch; the spans found are grouped by
(action, type) so each action runs once per batch (``tokenize``: one set of transit requests,
each distinct value sent once), then each string is rebuilt from its original pieces, so the
offsets of later spans stay valid. Nulls stay null; non-string cells of a scanned column are
scanned as their string form.
"""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from guardflow.pii._records import parse_path, string_slots
from guardflow.pii.actions import Masker
from guardflow.pii.entities import Entity, EntityType
from guardflow.pii.policy import Action, ColumnRule, PIIPolicy
from guardflow.pii.report import PIIReport

if TYPE_CHECKING:
    from guardflow.pii._parallel import ParallelDetector
    from guardflow.pii.detector import Detector
    from guardflow.secrets.client import VaultClient

__all__ = ["Engine", "Mode"]

Mode = Literal["mask", "scan"]
_FREE = ColumnRule(free_text=True)


class Engine:
    """Applies one policy to batches, accumulating the report's counts.

    Args:
        policy: The policy.
        vault: Needed by ``tokenize`` and ``hash_key_ref``.
        mode: ``"mask"`` transforms values; ``"scan"`` only counts.
        workers: Processes that detect in free text (1: this one); see
            :class:`~guardflow.pii._parallel.ParallelDetector`. Call :meth:`close` when done.
    """

    def __init__(
        self,
        policy: PIIPolicy,
        vault: VaultClient | None = None,
        *,
        mode: Mode = "mask",
        workers: int = 1,
    ) -> None:
        from guardflow.pii._parallel import check_workers

        self.policy = policy
        self.mode = mode
        self.workers = check_workers(workers)
        self.masker = Masker(policy, vault)
        self._detector: Detector | None = None
        self._finder: ParallelDetector | None = None
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.rows_scanned = 0
        self.rows_touched = 0
        self.bytes_scanned = 0
        self.batches = 0
        self.columns: list[str] = []
        self._paths = {
            name: [parse_path(p) for p in rule.json_paths] for name, rule in policy.columns.items()
        }

    def detector(self) -> Detector:
        """The detector the policy describes (built on first use)."""
        if self._detector is None:
            from guardflow.pii.detector import Detector

            self._detector = Detector(
                self.policy.entities,
                context=self.policy.context,
                ner=self.policy.ner,
                min_score=self.policy.min_score,
            )
        return self._detector

    def finder(self) -> Detector | ParallelDetector:
        """What detects in free text: the detector, or its parallel form when ``workers > 1``."""
        if self.workers == 1:
            return self.detector()
        if self._finder is None:
            from guardflow.pii._parallel import ParallelDetector

            self._finder = ParallelDetector(self.detector(), self.workers)
        return self._finder

    def close(self) -> None:
        """Stop the detection workers, if any were started."""
        if self._finder is not None:
            self._finder.close()
            self._finder = None

    def plan(self, names: Sequence[str], text_names: Sequence[str]) -> dict[str, ColumnRule]:
        """The rule of each present column to process (every text column when none is named)."""
        policy = self.policy
        plan: dict[str, ColumnRule] = {}
        if not policy.columns and not policy.free_text_columns:
            plan = {name: _FREE for name in text_names}
        else:
            for name in names:
                if name in policy.columns:
                    plan[name] = policy.columns[name]
                elif name in policy.free_text_columns:
                    plan[name] = _FREE
        for name in plan:
            if name not in self.columns:
                self.columns.append(name)
        return plan

    # --- values ------------------------------------------------------------------------------

    def values(
        self,
        column: str,
        rule: ColumnRule,
        values: list[str | None],
        rows: Sequence[int],
        touched: set[int],
        nbytes: int | None = None,
    ) -> list[str | None]:
        """Process one column's string values; ``rows[i]`` is the row of ``values[i]``.

        Returns ``values`` itself (the same list) when nothing changed. ``nbytes``: the values'
        UTF-8 size when the caller knows it (Arrow does, without a pass over the strings).
        """
        if nbytes is None:
            nbytes = sum(len(v.encode("utf-8", "surrogatepass")) for v in values if v)
        self.bytes_scanned += nbytes
        if rule.whole:
            return self._whole(column, rule, values, rows, touched)
        found = self.finder().detect_many(values)
        return self._apply(column, values, found, rows, touched)

    def _apply(
        self,
        column: str,
        values: list[str | None],
        found: list[list[Entity]],
        rows: Sequence[int],
        touched: set[int],
    ) -> list[str | None]:
        """Count the entities ``found`` in ``values`` and (mask mode) return the masked values."""
        groups: dict[tuple[Action, EntityType], list[tuple[int, Entity]]] = defaultdict(list)
        counts = self.counts[column]
        for i, entities in enumerate(found):
            if not entities:
                continue
            touched.add(rows[i])
            for entity in entities:
                counts[entity.type.value] += 1
                action = self.policy.action_for(entity.type, column)
                groups[(action, entity.type)].append((i, entity))
        if self.mode == "scan" or not groups:
            return values
        outputs: dict[tuple[int, int], str] = {}
        for (action, kind), hits in groups.items():
            texts = [_text(values[i])[e.start : e.end] for i, e in hits]
            for (i, e), out in zip(hits, self.masker.apply(action, kind, texts), strict=True):
                outputs[(i, e.start)] = out
        result = list(values)
        for i, entities in enumerate(found):
            if entities:
                result[i] = _rebuild(_text(values[i]), entities, outputs, i)
        return result

    def _arrow_free_text(self, column: str, col: Any, touched: set[int]) -> Any:
        """Scan/mask one Arrow string column; only rows holding candidates become Python strings.

        Returns the new column, or ``None`` when nothing changed.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        self.bytes_scanned += pc.sum(pc.binary_length(col)).as_py() or 0
        rows, texts, found = self.finder().detect_column(col)
        values: list[str | None] = list(texts)
        new = self._apply(column, values, found, rows, touched)
        if new is values:
            return None
        hit = [False] * len(col)
        for row in rows:
            hit[row] = True
        combined = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        return pc.replace_with_mask(combined, pa.array(hit), pa.array(new, type=col.type))

    def _whole(
        self,
        column: str,
        rule: ColumnRule,
        values: list[str | None],
        rows: Sequence[int],
        touched: set[int],
    ) -> list[str | None]:
        assert rule.entity is not None
        action = self.policy.action_for(rule.entity, column)
        present = [i for i, v in enumerate(values) if v]
        if self.mode == "scan":  # masked output rescanned: its masked values are not PII
            is_output = self.masker.is_output
            present = [i for i in present if not is_output(action, rule.entity, _text(values[i]))]
        if not present:
            return values
        self.counts[column][rule.entity.value] += len(present)
        touched.update(rows[i] for i in present)
        if self.mode == "scan":
            return values
        masked = self.masker.apply(action, rule.entity, [_text(values[i]) for i in present])
        result = list(values)
        for i, out in zip(present, masked, strict=True):
            result[i] = out
        return result

    # --- records -----------------------------------------------------------------------------

    def records(self, records: list[dict[str, Any]], *, offset: int = 0) -> list[dict[str, Any]]:
        """Process a batch of records (deep-copied first in mask mode); return the output."""
        out = copy.deepcopy(records) if self.mode == "mask" else records
        names = list(dict.fromkeys(k for r in out for k in r))
        texts = [n for n in names if any(isinstance(r.get(n), (str, dict, list)) for r in out)]
        touched: set[int] = set()
        for column, rule in self.plan(names, texts).items():
            self.nested(column, rule, [r.get(column) for r in out], touched, out)
        self._end_batch(len(out), touched)
        return out

    def nested(
        self,
        column: str,
        rule: ColumnRule,
        cells: list[Any],
        touched: set[int],
        records: list[dict[str, Any]] | None = None,
    ) -> list[Any]:
        """Process cells that may hold nested values (dicts, lists, JSON strings)."""
        paths = self._paths.get(column, [])
        holders: list[list[Any]] = []
        slots: list[tuple[Any, Any]] = []
        rows: list[int] = []
        reencode: list[int] = []
        for row, cell in enumerate(cells):
            holder = [cell]
            if isinstance(cell, str) and paths:
                try:
                    holder = [json.loads(cell)]
                    reencode.append(row)
                except ValueError:
                    holder = [cell]
            elif cell is not None and not isinstance(cell, (str, dict, list)):
                holder = [str(cell)]
            holders.append(holder)
            found = string_slots(holder, paths)
            slots.extend(found)
            rows.extend([row] * len(found))
        values: list[str | None] = [c[k] for c, k in slots]
        new = self.values(column, rule, values, rows, touched)
        if self.mode == "scan" or new is values:
            return cells  # nothing changed: every cell as it came, JSON text untouched
        changed: set[int] = set()
        for (container, key), old, value, row in zip(slots, values, new, rows, strict=True):
            if value != old:
                container[key] = value
                changed.add(row)
        result = [h[0] if row in changed else cells[row] for row, h in enumerate(holders)]
        for row in reencode:
            if row in changed:
                result[row] = json.dumps(result[row], ensure_ascii=False)
        if records is not None:
            for record, value in zip(records, result, strict=True):
                if column in record:
                    record[column] = value
        return result

    # --- Arrow -------------------------------------------------------------------------------

    def table(self, table: Any) -> Any:
        """Process one Arrow table or record batch; return the (masked) Arrow table.

        Dictionary-encoded and view string columns are processed as strings and written back
        in their own type; list and struct columns go through :meth:`nested`, and so do string
        columns whose rule names JSON paths. A column with nothing to change is kept as it is.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        names = list(table.column_names)
        texts = [n for n in names if _holds_text(table.schema.field(n).type)]
        touched: set[int] = set()
        for column, rule in self.plan(names, texts).items():
            col = table.column(column)
            kind = col.type
            if (pa.types.is_dictionary(kind) or pa.types.is_string_view(kind)) and _holds_text(
                kind
            ):
                col = pc.cast(col, pa.large_string())
            array = self._column(column, rule, col, touched)
            if array is None or self.mode == "scan":
                continue
            if array.type != kind and col.type != kind:  # back to the dictionary / view type
                array = pc.cast(array, kind)
            index = names.index(column)
            table = table.set_column(index, pa.field(column, array.type), array)
        self._end_batch(table.num_rows, touched)
        return table

    def _column(self, column: str, rule: ColumnRule, col: Any, touched: set[int]) -> Any:
        """One column's new Arrow values, or ``None`` when nothing in it changes."""
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = col.type
        rows = range(len(col))
        if _is_text(kind) and not rule.whole and not self._paths.get(column):
            return self._arrow_free_text(column, col, touched)
        if pa.types.is_nested(kind) or (_is_text(kind) and self._paths.get(column)):
            cells = col.to_pylist()
            new: Any = self.nested(column, rule, cells, touched)
            if new is cells:
                return None
            try:
                return pa.array(new, type=kind)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.array(new)
        if _is_text(kind):
            nbytes = pc.sum(pc.binary_length(col)).as_py() or 0
            values = col.to_pylist()
            new = self.values(column, rule, values, rows, touched, nbytes)
            return None if new is values else pa.array(new, type=kind)
        as_text = pc.cast(col, pa.string()).to_pylist()
        new = self.values(column, rule, as_text, rows, touched)
        return None if new is as_text else pa.array(new, pa.string())

    def _end_batch(self, rows: int, touched: set[int]) -> None:
        self.rows_scanned += rows
        self.rows_touched += len(touched)
        self.batches += 1

    def report(self) -> PIIReport:
        """The report of everything processed so far (counts only)."""
        counts = {c: dict(sorted(t.items())) for c, t in self.counts.items() if t}
        violations: dict[str, dict[str, int]] = {}
        for column, types in counts.items():
            allowed = {t.value for t in self.policy.allowed(column)}
            left = {t: n for t, n in types.items() if t not in allowed}
            if left:
                violations[column] = left
        return PIIReport(
            counts=counts,
            violations=violations,
            rows_scanned=self.rows_scanned,
            rows_touched=self.rows_touched,
            bytes_scanned=self.bytes_scanned,
            columns_scanned=list(self.columns),
            batches=self.batches,
        )


def _text(value: str | None) -> str:
    return value if value is not None else ""


def _rebuild(text: str, entities: list[Entity], outputs: dict[tuple[int, int], str], i: int) -> str:
    # Pieces are cut from the original string, so every span's offsets stay valid.
    pieces: list[str] = []
    pos = 0
    for entity in sorted(entities, key=lambda e: e.start):
        if entity.start < pos:  # overlapping spans: the detector should not give them
            continue
        pieces.append(text[pos : entity.start])
        pieces.append(outputs[(i, entity.start)])
        pos = entity.end
    pieces.append(text[pos:])
    return "".join(pieces)


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _holds_text(kind: Any) -> bool:
    """Whether an Arrow type holds strings: plain, view, dictionary-encoded, or nested inside."""
    import pyarrow as pa

    if _is_text(kind) or pa.types.is_string_view(kind):
        return True
    if pa.types.is_dictionary(kind):
        return _holds_text(kind.value_type)
    if pa.types.is_struct(kind):
        return any(_holds_text(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        return _holds_text(kind.key_type) or _holds_text(kind.item_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _holds_text(kind.value_type)
    return bool(pa.types.is_list_view(kind) and _holds_text(kind.value_type))
