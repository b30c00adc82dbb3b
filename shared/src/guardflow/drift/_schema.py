"""The two sides of a drift check and the columns they are compared on.

A :class:`Side` is the current data or the reference, read into Arrow (or, for the reference, a
saved :class:`~guardflow.drift.ReferenceProfile`), with per-column statistics summarised lazily,
one column at a time. :func:`select_columns` applies the schema rules and :func:`column_type`
Evidently's type detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guardflow.drift._columns import ColumnProfile, column_kind, summarise_column
from guardflow.drift._inputs import is_profile_uri, read_side
from guardflow.drift._methods import ColumnType
from guardflow.drift.config import DriftConfig
from guardflow.drift.profile import ReferenceProfile
from guardflow.errors import ConfigurationError, DriftInputError
from guardflow.fingerprint import fingerprint_table

__all__ = ["Side", "check_pair", "column_type", "data_side", "reference_side", "select_columns"]

_INT_CATEGORICAL_LIMIT = 10  # Evidently's INTEGER_CARDINALITY_LIMIT


@dataclass
class Side:
    """One side of a check: an Arrow table, or (reference only) a profile."""

    rows: int
    fingerprint: str | None
    names: list[str]
    kinds: dict[str, str | None]
    table: Any = None
    profile: ReferenceProfile | None = None
    cache: dict[str, ColumnProfile] = field(default_factory=dict)

    def stats(self, name: str) -> ColumnProfile:
        """Return the statistics of column ``name`` (summarised once, until :meth:`forget`)."""
        if self.profile is not None:
            return self.profile.columns[name]
        if name not in self.cache:
            self.cache[name] = summarise_column(name, self.table.column(name))
        return self.cache[name]

    def fingerprint_data(self) -> None:
        """Fill :attr:`fingerprint` from the table when it is not known yet (hashes the data)."""
        if self.fingerprint is None and self.table is not None:
            self.fingerprint = fingerprint_table(self.table)

    def forget(self, name: str) -> None:
        """Drop column ``name``'s cached statistics (keeps one column in memory at a time)."""
        self.cache.pop(name, None)

    def frame(self, columns: list[str]) -> Any:
        """Return ``columns`` as a pandas DataFrame (for the Evidently engine)."""
        if self.profile is not None:
            return self.profile.to_pandas(columns)
        return self.table.select(columns).to_pandas()


def reference_side(reference: Any) -> Side:
    """Open the reference: data, a :class:`ReferenceProfile`, or a saved profile's URI."""
    if is_profile_uri(reference):
        reference = ReferenceProfile.load(reference)
    if isinstance(reference, ReferenceProfile):
        kinds: dict[str, str | None] = {n: c.kind for n, c in reference.columns.items()}
        kinds.update(dict.fromkeys(reference.skipped_columns))
        return Side(
            rows=reference.rows,
            fingerprint=reference.fingerprint,
            names=[*reference.columns, *reference.skipped_columns],
            kinds=kinds,
            profile=reference,
        )
    return data_side(reference, side="reference")


def data_side(source: Any, *, side: str) -> Side:
    """Read data (never a profile) for one side; :meth:`Side.fingerprint_data` hashes it."""
    if isinstance(source, ReferenceProfile) or is_profile_uri(source):
        raise ConfigurationError(f"the {side} data cannot be a profile; pass the data itself")
    table = read_side(source, side=side)
    names = list(table.column_names)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DriftInputError(
            f"{side} data has duplicated column names: {duplicated}; rename them",
            columns=duplicated,
        )
    return Side(
        rows=table.num_rows,
        fingerprint=None,
        names=names,
        kinds={f.name: column_kind(f.type) for f in table.schema},
        table=table,
    )


def select_columns(ref: Side, cur: Side, config: DriftConfig) -> tuple[list[str], list[str]]:
    """Return the columns to compare (in current order) and the columns skipped."""
    forced = [*config.categorical, *config.numerical, *config.per_column]
    if config.columns is not None:
        wanted = list(dict.fromkeys(config.columns))
        missing_ref = [c for c in wanted if c not in ref.kinds]
        missing_cur = [c for c in wanted if c not in cur.kinds]
        if missing_ref or missing_cur:
            where = "the reference profile" if ref.profile is not None else "the reference"
            parts = [f"missing from {where}: {missing_ref}"] if missing_ref else []
            parts += [f"missing from the current data: {missing_cur}"] if missing_cur else []
            raise DriftInputError(
                "config.columns names columns that are not there: " + "; ".join(parts),
                columns=[*missing_ref, *missing_cur],
            )
        untestable = [c for c in wanted if ref.kinds[c] is None or cur.kinds[c] is None]
        if untestable:
            raise DriftInputError(
                f"columns of types drift cannot test (dates, lists, structs, binary): "
                f"{untestable}; leave them out of config.columns",
                columns=untestable,
            )
        _no_stray(forced, wanted)
        return wanted, []
    common = [c for c in cur.names if c in ref.kinds]
    one_sided = [c for c in ref.names if c not in cur.kinds] + [
        c for c in cur.names if c not in ref.kinds
    ]
    untestable = [c for c in common if ref.kinds[c] is None or cur.kinds[c] is None]
    columns = [c for c in common if c not in untestable]
    _no_stray(forced, columns)
    if not columns:
        raise DriftInputError(
            "the reference and the current data have no testable column in common "
            f"(reference: {ref.names}; current: {cur.names})",
            columns=one_sided + untestable,
        )
    return columns, one_sided + untestable


def _no_stray(forced: list[str], columns: list[str]) -> None:
    stray = sorted({c for c in forced if c not in columns})
    if stray:
        raise DriftInputError(
            f"the config's categorical/numerical/per_column name columns that are not compared: "
            f"{stray} (missing on a side, of an untestable type, or not in config.columns)",
            columns=stray,
        )


def column_type(
    name: str, ref: ColumnProfile, cur: ColumnProfile, config: DriftConfig
) -> ColumnType:
    """Return the column's type: forced by the config, else detected on the current data."""
    if name in config.categorical:
        return "cat"
    if name in config.numerical:
        return "num"
    if cur.kind != "numeric" or cur.dictionary:
        return "cat"
    if cur.integer and cur.n_unique <= _INT_CATEGORICAL_LIMIT:
        return "cat"
    return "num"


def check_pair(name: str, ref: ColumnProfile, cur: ColumnProfile, config: DriftConfig) -> str:
    """Return the problem with a column pair, or an empty string."""
    empty = [side for side, s in (("reference", ref), ("current", cur)) if s.count == 0]
    if empty:
        return f"{name!r} has no values in the {' and the '.join(empty)} (all null, NaN or inf)"
    if ref.kind != cur.kind:
        return f"{name!r} holds {ref.kind} values in the reference but {cur.kind} in the current"
    if name in config.numerical and cur.kind != "numeric":
        return f"{name!r} is listed in config.numerical but holds {cur.kind} values"
    return ""
