"""Tables in and out: records, data frames, Arrow tables and Parquet/CSV/JSONL files or URIs.

Everything is converted to a :class:`pyarrow.Table` on the way in (pyarrow comes with the ``data``,
``pandas`` and ``polars`` extras). Writes are atomic: a local file is written beside its
destination and renamed into place; a URI with a scheme (``s3://``, ``gs://``, ``memory://``...)
is written to a local temporary file first and then uploaded in one ``put`` through fsspec, so a
failed write never leaves a partial object behind.

Examples:
    >>> from guardflow.tables import read_table
    >>> read_table([{"id": 1, "x": 0.5}]).num_rows
    1
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import decimal
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn
from urllib.parse import urlsplit

from guardflow._optional import require
from guardflow.errors import ConfigurationError, InputDataError, OutputWriteError

__all__ = [
    "json_default",
    "local_path",
    "read_table",
    "safe_uri",
    "table_format",
    "write_bytes",
    "write_table",
]

_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
_JSONL_ROWS = 10_000
_CSV_ROWS = 65_536
_CSV_SPECIAL = b',"\r\n'
_CSV_NEEDS_QUOTES = r'[,"\r\n]'


def table_format(uri: str | os.PathLike[str]) -> str:
    """Return ``"parquet"``, ``"csv"`` or ``"jsonl"`` from a path's suffix.

    ``.json`` files are read as JSON Lines (one object per line).

    Raises:
        ConfigurationError: The suffix is not one of ``.parquet .pq .csv .jsonl .ndjson .json``.

    Examples:
        >>> table_format("s3://bucket/scores.parquet")
        'parquet'
    """
    name = os.fspath(uri).split("?", 1)[0].lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise ConfigurationError(
        f"cannot tell the format of {os.fspath(uri)!r}: name it .parquet, .csv or .jsonl"
    )


def local_path(uri: str | os.PathLike[str]) -> str | None:
    """Return the local file path ``uri`` names, or ``None`` for a remote URI.

    Examples:
        >>> local_path("file:///tmp/x.parquet"), local_path("s3://b/x.parquet")
        ('/tmp/x.parquet', None)
    """
    text = os.fspath(uri)
    if text.startswith("file://"):
        return text[len("file://") :]
    return None if _SCHEME.match(text) else text


def safe_uri(uri: str | os.PathLike[str]) -> str:
    """Return ``uri`` fit for messages, logs and summaries: no user info, no query string.

    Presigned URLs and ``user:password@`` hosts carry credentials; local paths are unchanged.

    Examples:
        >>> safe_uri("s3://bucket/x.parquet?X-Amz-Signature=abc"), safe_uri("/tmp/x.parquet")
        ('s3://bucket/x.parquet', '/tmp/x.parquet')
    """
    text = os.fspath(uri)
    if not _SCHEME.match(text) or text.startswith("file://"):
        return text
    parts = urlsplit(text)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


def json_default(value: Any) -> Any:
    """Encode values Arrow hands out that :mod:`json` cannot (dates, decimals, bytes).

    Use as ``json.dumps(obj, default=json_default)``. Secrets never come out in clear: a
    :class:`~guardflow.secrets.SecretValue` or pydantic ``SecretStr`` is written as its mask,
    and a whole :class:`~guardflow.secrets.Secret` as its key names with masked values.
    """
    from guardflow.secrets.values import MASK, Secret, SecretValue

    if isinstance(value, SecretValue):
        return MASK
    if isinstance(value, Secret):
        return dict.fromkeys(value, MASK)
    if type(value).__name__ in ("SecretStr", "SecretBytes") and hasattr(value, "get_secret_value"):
        return MASK
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"values of type {type(value).__name__} cannot be written as JSON")


def read_table(source: Any) -> Any:
    """Read records, a data frame, an Arrow table or a file into a :class:`pyarrow.Table`.

    Args:
        source: A list of dicts; a pandas or polars DataFrame; a pyarrow Table or RecordBatch; or a
            path or URI ending in ``.parquet``, ``.csv`` or ``.jsonl`` (read through fsspec when it
            has a scheme).

    Returns:
        A pyarrow Table with at least one row and no schema metadata.

    Raises:
        InputDataError: The input is missing, unreadable or has no rows.
        ConfigurationError: ``source`` is of a type guardflow does not read.
        MissingExtraError: pyarrow (or fsspec, for URIs) is not installed.
    """
    pa = require("pyarrow", "data")
    if isinstance(source, (str, os.PathLike)):
        table = _read_file(os.fspath(source))
        origin = f"input {os.fspath(source)!r}"
    else:
        table = _from_memory(pa, source)
        origin = "the input"
    if table.num_rows == 0:
        raise InputDataError(f"{origin} has no rows; there is nothing to process")
    return table.replace_schema_metadata(None)


def _conversion_errors(pa: Any) -> tuple[type[Exception], ...]:
    """The errors Arrow raises when values do not fit one column type (they quote a value)."""
    return (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def _mixed_column(pa: Any, frame: Any) -> str:
    """``"column 'x' "`` for the first DataFrame column Arrow cannot convert (no value quoted)."""
    for name in frame.columns:
        try:
            pa.Array.from_pandas(frame[name])
        except _conversion_errors(pa):
            return f"column {str(name)!r} "
    return "a column "


def _from_memory(pa: Any, source: Any) -> Any:
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    module = type(source).__module__.split(".", 1)[0]
    if module == "pandas" and hasattr(source, "columns"):
        try:
            return pa.Table.from_pandas(source, preserve_index=False)
        except _conversion_errors(pa):
            raise InputDataError(
                f"the DataFrame could not be converted to a table: {_mixed_column(pa, source)}"
                "mixes value types (numbers and text in one object column, say); make each "
                "column's values one type, e.g. df[col].astype(str)"
            ) from None
    if module == "polars" and hasattr(source, "to_arrow"):
        return source.to_arrow()
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        if not all(isinstance(row, Mapping) for row in source):
            raise ConfigurationError("records must be a list of dicts (one dict per row)")
        try:
            return pa.Table.from_pylist(list(source))
        except _conversion_errors(pa) as exc:
            # Arrow's message quotes the offending value: keep it out of ours.
            raise InputDataError(
                "records could not be converted to a table: a column mixes value types "
                f"({type(exc).__name__}); make each column's values one type"
            ) from None
    raise ConfigurationError(
        f"cannot read an input of type {type(source).__name__}: pass records, a pandas or "
        "polars DataFrame, a pyarrow Table, or a .parquet/.csv/.jsonl path or URI"
    )


def _read_file(uri: str) -> Any:
    fmt = table_format(uri)
    path = local_path(uri)
    if path is not None and not Path(path).is_file():
        raise InputDataError(f"input {safe_uri(uri)!r} does not exist (or is not a file)")
    try:
        if path is not None:
            return _parse(fmt, path)
        fsspec = require("fsspec", "data")
        with fsspec.open(uri, "rb") as fh:
            return _parse(fmt, fh)
    except FileNotFoundError:
        raise InputDataError(f"input {safe_uri(uri)!r} does not exist") from None
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise InputDataError(
            f"could not read {fmt} input {safe_uri(uri)!r} ({type(exc).__name__}); "
            f"check that it is a valid, non-empty {fmt} file"
        ) from None


def _parse(fmt: str, where: Any) -> Any:
    if fmt == "parquet":
        return require("pyarrow.parquet", "data").read_table(where)
    if fmt == "csv":
        return require("pyarrow.csv", "data").read_csv(where)
    return require("pyarrow.json", "data").read_json(where)


def write_table(table: Any, uri: str | os.PathLike[str]) -> None:
    """Write ``table`` to ``uri`` atomically, in the format its suffix names.

    Args:
        table: A pyarrow Table.
        uri: A local path or a URI with a scheme (through fsspec), ending in ``.parquet``,
            ``.csv`` or ``.jsonl``. Parent folders of a local path are created.

    Raises:
        OutputWriteError: The write failed; nothing partial was left at ``uri``.
        ConfigurationError: The suffix names no known format.
    """
    fmt = table_format(uri)
    _atomic(os.fspath(uri), lambda path: _serialize(fmt, table, path), what=f"{fmt} output")


def write_bytes(data: bytes, uri: str | os.PathLike[str]) -> None:
    """Write ``data`` to ``uri`` atomically (temp + rename locally, one upload remotely).

    Raises:
        OutputWriteError: The write failed; nothing partial was left at ``uri``.
    """
    _atomic(os.fspath(uri), lambda path: Path(path).write_bytes(data), what="file")


def _serialize(fmt: str, table: Any, path: str) -> None:
    if fmt == "parquet":
        require("pyarrow.parquet", "data").write_table(table, path)
    elif fmt == "csv":
        with open(path, "wb") as fh:
            _write_csv(table, fh, header=True)
    else:
        with open(path, "w", encoding="utf-8") as fh:
            for batch in table.to_batches(max_chunksize=_JSONL_ROWS):
                fh.writelines(
                    json.dumps(row, default=json_default, ensure_ascii=False) + "\n"
                    for row in batch.to_pylist()
                )


def _write_csv(table: Any, fh: BinaryIO, *, header: bool) -> None:
    """Write ``table`` to ``fh`` as CSV, quoting a field only when the CSV dialect needs it.

    A field is quoted when it holds a comma, a double quote (doubled inside), CR or LF, so text,
    numbers and ids come out as they are. Values are rendered as pyarrow's own CSV writer renders
    them. Nulls and empty strings are both written as an empty field (a CSV reader cannot tell
    them apart anyway unless asked to), except in a one-column table, where an empty line would
    be skipped as no row at all: there they are written as ``""``. Lines end in LF. Rows are
    rendered in slices, so memory stays bounded by a slice, not the table.

    Args:
        table: A pyarrow Table or RecordBatch without nested (list, struct) columns.
        fh: A file opened for writing bytes.
        header: Write the column names as the first line.

    Raises:
        pyarrow.ArrowNotImplementedError: A column has a type that has no text form.
    """
    pa = require("pyarrow", "data")
    pc = require("pyarrow.compute", "data")
    alone = table.num_columns == 1
    if header:
        names = pa.array([name.encode() for name in table.column_names], pa.large_binary())
        fields = _csv_fields(pa, pc, names, alone=alone).to_pylist()
        fh.write(b",".join(fields) + b"\n")
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if table.num_columns == 0:
        return
    sep, end = pa.scalar(b",", pa.large_binary()), pa.scalar(b"\n", pa.large_binary())
    none = pa.scalar(b"", pa.large_binary())
    for batch in table.to_batches(max_chunksize=_CSV_ROWS):
        if batch.num_rows == 0:
            continue
        fields = [_csv_fields(pa, pc, _csv_bytes(pa, pc, column), alone=alone) for column in batch]
        fields[-1] = pc.binary_join_element_wise(fields[-1], end, none)
        lines = pc.binary_join_element_wise(*fields, sep)
        fh.write(_csv_span(pa, lines))


def _csv_bytes(pa: Any, pc: Any, column: Any) -> Any:
    if pa.types.is_binary(column.type) or pa.types.is_fixed_size_binary(column.type):
        return pc.cast(column, pa.large_binary())
    return pc.cast(pc.cast(column, pa.large_string()), pa.large_binary())


def _csv_span(pa: Any, values: Any) -> Any:
    """The bytes of a large_binary array's values, back to back, without a copy."""
    data = values.buffers()[2]
    if len(values) == 0 or data is None:
        return b""
    offsets = pa.Array.from_buffers(
        pa.int64(), values.offset + len(values) + 1, [None, values.buffers()[1]]
    )
    start, stop = offsets[values.offset].as_py(), offsets[values.offset + len(values)].as_py()
    return data.slice(start, stop - start)


def _csv_fields(pa: Any, pc: Any, values: Any, *, alone: bool) -> Any:
    """Turn a large_binary array into CSV fields: quoted where needed, nulls as empty fields."""
    empty = pa.scalar(b"", pa.large_binary())
    needs = None
    text = bytes(_csv_span(pa, values))
    # Most columns (ids, numbers) hold no special byte at all: one scan of the bytes skips them.
    if any(byte in text for byte in _CSV_SPECIAL):
        needs = pc.fill_null(pc.match_substring_regex(values, _CSV_NEEDS_QUOTES), False)
    if alone:  # a blank line is no row to a CSV reader
        blank = pc.fill_null(pc.equal(values, empty), True)
        needs = blank if needs is None else pc.or_(needs, blank)
    values = pc.fill_null(values, empty)
    if needs is None or not pc.any(needs).as_py():
        return values
    quote = pa.scalar(b'"', pa.large_binary())
    doubled = pc.replace_substring(values, pattern='"', replacement='""')
    return pc.if_else(needs, pc.binary_join_element_wise(quote, doubled, quote, empty), values)


def _atomic(uri: str, write: Callable[[str], object], *, what: str) -> None:
    path = local_path(uri)
    if path is not None:
        target = Path(path)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write(str(temp))
            os.replace(temp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            _reraise(exc, uri, what)
        return
    fsspec = require("fsspec", "data")
    suffix = Path(uri.split("?", 1)[0]).suffix
    fd, temp_name = tempfile.mkstemp(prefix="guardflow-", suffix=suffix)
    os.close(fd)
    try:
        write(temp_name)
        fs, remote = fsspec.core.url_to_fs(uri)
        fs.put_file(temp_name, remote)
    except BaseException as exc:
        _reraise(exc, uri, what)
    finally:
        Path(temp_name).unlink(missing_ok=True)


def _reraise(exc: BaseException, uri: str, what: str) -> NoReturn:
    if not isinstance(exc, Exception):
        raise exc  # KeyboardInterrupt and friends pass through untouched
    reason = str(exc) if isinstance(exc, OSError) else type(exc).__name__
    nested = type(exc).__name__ in ("ArrowNotImplementedError", "ArrowTypeError")
    hint = (
        "; nested values (lists, structs) need .parquet or .jsonl"
        if what.startswith("csv") and nested
        else ""
    )
    raise OutputWriteError(
        f"could not write the {what} to {safe_uri(uri)!r} ({reason}); nothing was left there{hint}"
    ) from (exc if isinstance(exc, OSError) else None)
