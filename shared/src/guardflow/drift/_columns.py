"""Per-column statistics taken from an Arrow table, once, in vectorised passes.

A :class:`ColumnProfile` is what a drift test needs of one side of one column: the sorted finite
values of a numeric column (for exact K-S and Wasserstein, and for binning against any other
sample) or the value counts of a string/boolean column. Nulls, NaN and +/-inf are dropped and
counted, as Evidently drops them before testing. The same summary describes the current data and a
saved reference profile, so both paths feed the tests the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from guardflow._optional import require
from guardflow.errors import DriftInputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]

__all__ = ["ColumnKind", "ColumnProfile", "column_kind", "summarise_column"]

ColumnKind = Literal["numeric", "string", "bool", "null"]
"""How a column's values are held: numbers, strings, booleans, or nothing (all null)."""


@dataclass(eq=False)
class ColumnProfile:
    """The statistics of one column on one side of a drift check.

    Attributes:
        name: Column name.
        kind: ``numeric``, ``string``, ``bool`` or ``null`` (an Arrow ``null`` column).
        rows: Rows in the column, nulls included.
        nulls: Nulls, NaN and infinite values (dropped before testing).
        integer: Whether pandas would hold the column with an integer dtype (an Arrow integer
            column without nulls); Evidently's type detection and numpy's bin widths depend on it.
        dictionary: Whether the column is dictionary-encoded (a pandas ``category`` or polars
            ``Categorical``), which Evidently always treats as categorical.
        values: Sorted finite values (numeric columns), as float64.
        categories: Distinct non-null values (string/bool columns), an Arrow array.
        counts: Occurrences of each of ``categories``.
    """

    name: str
    kind: ColumnKind
    rows: int
    nulls: int
    integer: bool = False
    dictionary: bool = False
    values: FloatArray | None = None
    categories: Any = None
    counts: IntArray | None = None
    _unique: tuple[FloatArray, IntArray] | None = field(default=None, repr=False)
    _std: float | None = field(default=None, repr=False)

    __hash__ = None  # type: ignore[assignment]  # mutable caches; compared by content

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        np = require("numpy", "drift")
        fields = ("name", "kind", "rows", "nulls", "integer", "dictionary")
        same = all(getattr(self, f) == getattr(other, f) for f in fields)
        if not same or (self.values is None) != (other.values is None):
            return False
        if self.values is not None and not np.array_equal(self.values, other.values):
            return False
        if (self.categories is None) != (other.categories is None):
            return False
        if self.categories is None:
            return True
        return bool(self.categories.equals(other.categories)) and np.array_equal(
            self.counts, other.counts
        )

    @property
    def count(self) -> int:
        """Values left after dropping nulls, NaN and infinities."""
        return self.rows - self.nulls

    def unique_counts(self) -> tuple[Any, IntArray]:
        """Return the distinct values (sorted for numeric columns) and how often each occurs."""
        if self.kind == "numeric":
            if self._unique is None:
                self._unique = _unique_sorted(self.values if self.values is not None else _empty())
            return self._unique
        np = require("numpy", "drift")
        if self.counts is None:
            return self.categories, np.zeros(0, dtype=np.int64)
        return self.categories, self.counts

    @property
    def n_unique(self) -> int:
        """Distinct non-null values (pandas ``nunique``)."""
        if self.kind == "numeric" and self._unique is None:
            np = require("numpy", "drift")
            values = self.values if self.values is not None else _empty()
            return int(np.count_nonzero(values[1:] != values[:-1])) + int(values.size > 0)
        return len(self.unique_counts()[1])

    @property
    def std(self) -> float:
        """Population standard deviation of the values (``numpy.std``), 0 for no values."""
        if self._std is None:
            np = require("numpy", "drift")
            values = self.values if self.values is not None else _empty()
            self._std = float(np.std(values)) if values.size else 0.0
        return self._std


def _empty() -> FloatArray:
    np = require("numpy", "drift")
    out: FloatArray = np.zeros(0, dtype=np.float64)
    return out


def _unique_sorted(values: FloatArray) -> tuple[FloatArray, IntArray]:
    np = require("numpy", "drift")
    if values.size == 0:
        return values, np.zeros(0, dtype=np.int64)
    # values are sorted: a change point marks a new distinct value, in O(n) without a hash table
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    counts = np.diff(np.append(starts, values.size)).astype(np.int64)
    uniq: FloatArray = values[starts]
    return uniq, counts


def column_kind(arrow_type: Any) -> ColumnKind | None:
    """Return how a column of ``arrow_type`` is tested, or ``None`` for types drift skips.

    Integers, floats and decimals are numeric; strings (any width), dictionaries of strings and
    booleans are categorical; an all-null ``null`` column is ``null``. Dates, times, timestamps,
    durations, binary, lists and structs are skipped, as Evidently skips datetime and unknown
    columns.
    """
    pa = require("pyarrow", "drift")
    types = pa.types
    if types.is_dictionary(arrow_type):
        return column_kind(arrow_type.value_type)
    if types.is_integer(arrow_type) or types.is_floating(arrow_type):
        return "numeric"
    if types.is_decimal(arrow_type):
        return "numeric"
    if types.is_boolean(arrow_type):
        return "bool"
    if (
        types.is_string(arrow_type)
        or types.is_large_string(arrow_type)
        or getattr(types, "is_string_view", lambda _t: False)(arrow_type)
    ):
        return "string"
    if types.is_null(arrow_type):
        return "null"
    return None


def summarise_column(name: str, column: Any) -> ColumnProfile:
    """Summarise one Arrow column (Array or ChunkedArray) for drift tests.

    Args:
        name: The column's name.
        column: Its values.

    Returns:
        The column's :class:`ColumnProfile`.

    Raises:
        DriftInputError: The column's type cannot be tested for drift.
    """
    pa = require("pyarrow", "drift")
    pc = require("pyarrow.compute", "drift")
    np = require("numpy", "drift")
    rows = len(column)
    kind = column_kind(column.type)
    if kind is None:
        raise DriftInputError(
            f"column {name!r} has type {column.type}, which drift cannot test; leave it out of "
            "config.columns (dates, lists, structs and binary are not compared)",
            columns=[name],
        )
    if kind == "null":
        return ColumnProfile(name=name, kind="null", rows=rows, nulls=rows)
    dictionary = bool(pa.types.is_dictionary(column.type))
    if dictionary:
        column = column.cast(column.type.value_type)
    if kind == "numeric":
        integer = pa.types.is_integer(column.type) and column.null_count == 0
        floats = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        finite = floats[np.isfinite(floats)]
        finite.sort()
        return ColumnProfile(
            name=name,
            kind="numeric",
            rows=rows,
            nulls=rows - int(finite.size),
            integer=bool(integer),
            dictionary=dictionary,
            values=finite,
        )
    if kind == "string" and not pa.types.is_large_string(column.type):
        column = column.cast(pa.large_string())
    counted = pc.value_counts(column)
    values = counted.field("values")
    keep = pc.is_valid(values)
    categories = pc.filter(values, keep)
    counts = pc.filter(counted.field("counts"), keep).to_numpy().astype(np.int64)
    order = pc.sort_indices(categories)
    return ColumnProfile(
        name=name,
        kind=kind,
        rows=rows,
        nulls=int(column.null_count),
        dictionary=dictionary,
        categories=pc.take(categories, order),
        counts=counts[order.to_numpy()],
    )
