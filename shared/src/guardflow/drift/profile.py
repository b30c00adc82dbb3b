"""Reference profiles: a reference dataset's drift statistics, computed once and saved.

A :class:`ReferenceProfile` holds, per column, what every drift test needs of the reference: the
sorted finite values of a numeric column (exact K-S and Wasserstein, and binning against any
current sample) or the value counts of a categorical one, with row and null counts. A scheduled
check passes the profile (or its URI) as ``reference`` and never reloads the reference data; the
scores are identical to those computed from the raw reference.

A profile is saved as one Parquet file whose name ends in ``.gfprofile`` (that suffix is how
:func:`~guardflow.drift.check_drift` tells a profile from a data file). Its columns hold the value
arrays, padded with nulls to one length; the schema metadata key ``guardflow.drift.profile`` holds
a JSON description (format version, rows, reference fingerprint, column names, kinds and counts).
It contains the reference's values, so store it where you would store the reference.

Examples:
    >>> import tempfile, os
    >>> reference = [{"x": float(i), "c": "ab"[i % 2]} for i in range(100)]
    >>> profile = build_profile(reference)
    >>> path = os.path.join(tempfile.mkdtemp(), "reference.gfprofile")
    >>> profile.save(path)
    >>> ReferenceProfile.load(path) == profile
    True
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from guardflow import __version__
from guardflow._optional import require
from guardflow.drift._columns import ColumnProfile, column_kind, summarise_column
from guardflow.drift._inputs import PROFILE_SUFFIX, is_profile_uri, read_side
from guardflow.drift.config import DriftConfig
from guardflow.errors import ConfigurationError, DriftInputError
from guardflow.fingerprint import fingerprint_table
from guardflow.tables import local_path, safe_uri, write_bytes

__all__ = ["PROFILE_SUFFIX", "ReferenceProfile", "build_profile"]

_META_KEY = b"guardflow.drift.profile"
_FORMAT = 1


class ReferenceProfile:
    """The drift statistics of a reference dataset, reusable across checks.

    Build one with :func:`build_profile`; save it with :meth:`save`, read it back with
    :meth:`load`. Pass either the object or the saved URI to
    :func:`~guardflow.drift.check_drift` as ``reference``.

    Args:
        columns: Per-column statistics, in the reference's column order.
        rows: Rows in the reference.
        fingerprint: Fingerprint of the reference table (``sha256:...``).
        skipped_columns: Reference columns of types drift does not test (dates, lists...).
        created_at: When the profile was built (ISO 8601, UTC).
    """

    def __init__(
        self,
        columns: Mapping[str, ColumnProfile],
        *,
        rows: int,
        fingerprint: str | None = None,
        skipped_columns: list[str] | None = None,
        created_at: str | None = None,
    ) -> None:
        self.columns: dict[str, ColumnProfile] = dict(columns)
        self.rows = rows
        self.fingerprint = fingerprint
        self.skipped_columns = list(skipped_columns or [])
        self.created_at = created_at or datetime.now(timezone.utc).isoformat()

    def __repr__(self) -> str:
        return (
            f"ReferenceProfile(rows={self.rows}, columns={list(self.columns)}, "
            f"fingerprint={self.fingerprint!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceProfile):
            return NotImplemented
        return (
            self.rows == other.rows
            and self.fingerprint == other.fingerprint
            and self.skipped_columns == other.skipped_columns
            and list(self.columns) == list(other.columns)
            and all(self.columns[name] == other.columns[name] for name in self.columns)
        )

    __hash__ = None  # type: ignore[assignment]

    def summary(self) -> dict[str, Any]:
        """Describe the profile by names and counts (no values), e.g. for logs."""
        return {
            "rows": self.rows,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at,
            "skipped_columns": self.skipped_columns,
            "columns": [
                {"name": c.name, "kind": c.kind, "nulls": c.nulls, "integer": c.integer}
                for c in self.columns.values()
            ],
        }

    def save(self, uri: str | os.PathLike[str]) -> None:
        """Write the profile atomically to a local path or a URI (through fsspec).

        Args:
            uri: Where to write; the name must end in ``.gfprofile``.

        Raises:
            ConfigurationError: The name does not end in ``.gfprofile``.
            OutputWriteError: The write failed; nothing partial was left behind.
        """
        if not is_profile_uri(uri):
            raise ConfigurationError(
                f"name the profile file with the {PROFILE_SUFFIX!r} suffix (got "
                f"{safe_uri(uri)!r}); check_drift reads a reference by that suffix"
            )
        pq = require("pyarrow.parquet", "drift")
        buffer = io.BytesIO()
        pq.write_table(self._to_table(), buffer, compression="zstd")
        write_bytes(buffer.getvalue(), uri)

    @classmethod
    def load(cls, uri: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by :meth:`save`.

        Raises:
            DriftInputError: The file does not exist or is not a guardflow drift profile.
        """
        pq = require("pyarrow.parquet", "drift")
        text = os.fspath(uri)
        try:
            path = local_path(text)
            if path is not None:
                table = pq.read_table(path)
            else:
                with require("fsspec", "data").open(text, "rb") as fh:
                    table = pq.read_table(fh)
        except FileNotFoundError:
            raise DriftInputError(f"reference profile {safe_uri(text)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise DriftInputError(
                f"could not read reference profile {safe_uri(text)!r} ({type(exc).__name__}); "
                "rebuild it with build_profile(...).save(...)"
            ) from None
        return cls._from_table(table, origin=safe_uri(text))

    def to_pandas(self, columns: list[str]) -> Any:
        """Rebuild a pandas DataFrame with the profiled distribution of ``columns``.

        Each column holds its non-null values followed by nulls up to :attr:`rows`; rows are not
        aligned across columns (per-column drift tests do not need them to be). Used to run the
        Evidently engine against a profile.
        """
        pd = require("pandas", "drift")
        np = require("numpy", "drift")
        data: dict[str, Any] = {}
        for name in columns:
            col = self.columns[name]
            if col.kind == "numeric":
                assert col.values is not None
                values: Any = np.concatenate((col.values, np.full(col.nulls, np.nan)))
                if col.integer:
                    values = values.astype(np.int64)
                data[name] = values
            elif col.kind == "null":
                data[name] = np.full(col.rows, None, dtype=object)
            else:
                repeated = np.repeat(
                    np.asarray(col.categories.to_pylist(), dtype=object), col.counts
                )
                if col.nulls:
                    repeated = np.concatenate((repeated, np.full(col.nulls, None, dtype=object)))
                elif col.kind == "bool":
                    repeated = repeated.astype(bool)
                data[name] = repeated
        return pd.DataFrame(data, columns=columns)

    def _to_table(self) -> Any:
        pa = require("pyarrow", "drift")
        length = max(self.rows, 1)
        arrays: dict[str, Any] = {}
        described: list[dict[str, Any]] = []
        for i, col in enumerate(self.columns.values()):
            entry: dict[str, Any] = {
                "name": col.name,
                "kind": col.kind,
                "rows": col.rows,
                "nulls": col.nulls,
                "integer": col.integer,
                "dictionary": col.dictionary,
                "field": f"c{i}",
            }
            if col.kind == "numeric":
                arrays[f"c{i}"] = _padded(pa, pa.array(col.values, pa.float64()), length)
            elif col.kind in ("string", "bool"):
                entry["categories"] = len(col.counts) if col.counts is not None else 0
                arrays[f"c{i}"] = _padded(pa, col.categories, length)
                arrays[f"c{i}_n"] = _padded(pa, pa.array(col.counts, pa.int64()), length)
            described.append(entry)
        meta = {
            "format": _FORMAT,
            "guardflow_version": __version__,
            "rows": self.rows,
            "fingerprint": self.fingerprint,
            "created_at": self.created_at,
            "skipped_columns": self.skipped_columns,
            "columns": described,
        }
        table = pa.table(arrays) if arrays else pa.table({"_": pa.nulls(length)})
        return table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})

    @classmethod
    def _from_table(cls, table: Any, *, origin: str) -> ReferenceProfile:
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise DriftInputError(
                f"{origin!r} is not a guardflow drift profile; build one with build_profile()"
            )
        meta = json.loads(raw)
        if meta.get("format") != _FORMAT:
            raise DriftInputError(
                f"reference profile {origin!r} has format {meta.get('format')!r}; this guardflow "
                f"reads format {_FORMAT}: rebuild the profile with build_profile()"
            )
        columns: dict[str, ColumnProfile] = {}
        for entry in meta["columns"]:
            columns[entry["name"]] = _column_from(table, entry)
        return cls(
            columns,
            rows=int(meta["rows"]),
            fingerprint=meta.get("fingerprint"),
            skipped_columns=list(meta.get("skipped_columns") or []),
            created_at=meta.get("created_at"),
        )


def _padded(pa: Any, array: Any, length: int) -> Any:
    if len(array) == length:
        return array
    return pa.concat_arrays([array, pa.nulls(length - len(array), array.type)])


def _column_from(table: Any, entry: dict[str, Any]) -> ColumnProfile:
    np = require("numpy", "drift")
    kind = entry["kind"]
    count = int(entry["rows"]) - int(entry["nulls"])
    common = {
        "name": entry["name"],
        "kind": kind,
        "rows": int(entry["rows"]),
        "nulls": int(entry["nulls"]),
        "integer": bool(entry["integer"]),
        "dictionary": bool(entry.get("dictionary", False)),
    }
    field = entry["field"]
    if kind == "numeric":
        values = table.column(field).slice(0, count).to_numpy().astype(np.float64, copy=False)
        return ColumnProfile(**common, values=values)
    if kind in ("string", "bool"):
        k = int(entry["categories"])
        categories = table.column(field).slice(0, k).combine_chunks()
        counts = table.column(f"{field}_n").slice(0, k).to_numpy().astype(np.int64)
        return ColumnProfile(**common, categories=categories, counts=counts)
    return ColumnProfile(**common)


def build_profile(reference: Any, config: DriftConfig | None = None) -> ReferenceProfile:
    """Compute a reference's drift statistics once, to save and reuse.

    Args:
        reference: Records, a pandas or polars DataFrame, a pyarrow Table, or a
            ``.parquet``/``.csv``/``.jsonl`` path or URI.
        config: Only ``config.columns`` is used: the columns to profile (default: all columns of
            types drift tests; others are listed in ``skipped_columns``).

    Returns:
        The :class:`ReferenceProfile`.

    Raises:
        DriftInputError: The reference is empty, or a column named in ``config.columns`` is
            missing or of a type drift cannot test.

    Examples:
        >>> profile = build_profile([{"x": 1.0}, {"x": 2.0}, {"x": None}])
        >>> profile.columns["x"].nulls, profile.rows
        (1, 3)
    """
    if isinstance(reference, ReferenceProfile) or is_profile_uri(reference):
        raise ConfigurationError("build_profile() takes reference data, not a profile")
    table = read_side(reference, side="reference")
    names = list(table.column_names)
    wanted = config.columns if config is not None and config.columns is not None else None
    if wanted is not None:
        missing = [c for c in wanted if c not in names]
        if missing:
            raise DriftInputError(f"columns missing from the reference: {missing}", columns=missing)
    columns: dict[str, ColumnProfile] = {}
    skipped: list[str] = []
    for name in wanted if wanted is not None else names:
        column = table.column(name)
        if wanted is None and column_kind(column.type) is None:
            skipped.append(name)
            continue
        columns[name] = summarise_column(name, column)
    return ReferenceProfile(
        columns, rows=table.num_rows, fingerprint=fingerprint_table(table), skipped_columns=skipped
    )
