"""Files in bounded memory: read in batches, write each masked batch out before the next is read.

Parquet is read row group by row group (:meth:`pyarrow.parquet.ParquetFile.iter_batches`, one
reader per row group, so nothing read earlier stays buffered), CSV block by block
(:func:`pyarrow.csv.open_csv`, every column read as text so values keep their exact form: leading
zeros, ``+`` signs), JSON Lines in batches of lines (as records, so nested values keep their
shape). Output goes to a temporary file renamed into place (or uploaded in one
piece) by :mod:`guardflow.tables`, so a failure half-way leaves nothing at the destination.

A Parquet or CSV output's columns (and, for Parquet, their types) are fixed by the first batch.
A later batch missing some of them gets nulls there; a later batch whose values fit the fixed
types (nulls, integers in a float column) is cast to them. A column that first appears after the
first batch, or whose values do not fit its fixed type, stops the write with an
:class:`~guardflow.errors.InputDataError` naming the line (JSONL) or row and the column, never a
value: no column is ever dropped. An input with no rows keeps its columns (a zero-row Parquet file
its schema, a header-only CSV its header).
"""

from __future__ import annotations

import collections
import contextvars
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from guardflow._optional import require
from guardflow.errors import GuardflowError, InputDataError, OutputWriteError
from guardflow.tables import _atomic, _write_csv, json_default, local_path, safe_uri, table_format

__all__ = ["BATCH_ROWS", "Batch", "read_batches", "write_batches"]

#: Rows per batch read (Parquet batches never span row groups; CSV blocks are cut by bytes).
BATCH_ROWS = 65_536
_CSV_BLOCK = 16 << 20

#: A batch: a pyarrow RecordBatch, or a list of records (JSON Lines).
Batch = Any

#: A lone UTF-16 surrogate: valid as a JSON ``\\uXXXX`` escape, not encodable as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")

#: Bytes that may start a surrogate escape in a JSON line (a cheap test before a closer look).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _Run:
    """What :func:`write_batches` tells the JSONL reader while it runs (same context)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        #: The line numbers of each JSONL batch read, oldest first, so errors about a record
        #: name its line (blank lines are skipped, so line and record numbers differ).
        self.lines: collections.deque[list[int]] = collections.deque()


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "guardflow_pii_run", default=None
)


def _open(uri: str) -> Any:
    path = local_path(uri)
    if path is not None:
        if not Path(path).is_file():
            raise InputDataError(f"input {safe_uri(uri)!r} does not exist (or is not a file)")
        return open(path, "rb")  # closed by the generator that reads it
    return require("fsspec", "data").open(uri, "rb").open()


def read_batches(uri: str, *, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """Yield the batches of a Parquet, CSV or JSONL file, one at a time.

    A Parquet file without rows and a CSV file with only a header yield one empty batch, so their
    columns reach the output; a 0-byte CSV or JSONL file yields nothing.

    Raises:
        InputDataError: The file is missing or unreadable, or names a column twice (never
            quoting its content).
    """
    fmt = table_format(uri)
    fh = _open(uri)
    try:
        if fmt == "parquet":
            yield from _parquet(fh, batch_rows, uri)
        elif fmt == "csv":
            yield from _csv(fh, uri)
        else:
            yield from _jsonl(fh, batch_rows, uri)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise InputDataError(
            f"could not read {fmt} input {safe_uri(uri)!r} ({type(exc).__name__}); "
            f"check that it is a valid {fmt} file"
        ) from None
    finally:
        fh.close()


def _unique(names: list[str], uri: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputDataError(
                f"the {where} of {safe_uri(uri)!r} names column {name!r} more than once; "
                "give every column a distinct name"
            )
        seen.add(name)


def _parquet(fh: Any, batch_rows: int, uri: str) -> Iterator[Batch]:
    pa = require("pyarrow", "pii")
    pq = require("pyarrow.parquet", "pii")
    parquet = pq.ParquetFile(fh)
    schema = parquet.schema_arrow
    _unique(schema.names, uri, "schema")
    # One reader per row group: a single reader over the whole file keeps the pre-buffered
    # bytes of every row group it has read until it finishes (pyarrow's ``pre_buffer``, on by
    # default), so memory grew with the file size (+770 MiB reading a 1 GB file, against
    # +130 MiB this way). Pre-buffering still coalesces the reads inside each row group, which
    # is what makes remote files fast.
    empty = True
    for group in range(parquet.num_row_groups):
        for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[group]):
            empty = False
            yield batch
    if empty:  # no rows: one empty batch still carries the schema to the output
        yield pa.RecordBatch.from_pylist([], schema=schema)


def _csv(fh: Any, uri: str) -> Iterator[Batch]:
    pa = require("pyarrow", "pii")
    csv = require("pyarrow.csv", "pii")
    head = fh.read(_CSV_BLOCK + 1)
    if not head:
        return  # a 0-byte file: no header, no rows, an empty output (as for an empty JSONL)
    if len(head) <= _CSV_BLOCK and b"\n" not in head and b"\r" not in head:
        # A header alone without a line end, which Arrow's reader refuses: end the line.
        head += b"\n"
        fh = io.BytesIO(head)
    fh.seek(0)
    # One thread: the reader finds row boundaries serially anyway (quoted line breaks, below),
    # and the file is parsed the same way every time (a threaded read of a file with quoted
    # line breaks across small blocks failed once in about 25 test runs, never in isolation).
    read = csv.ReadOptions(block_size=_CSV_BLOCK, use_threads=False)
    # Quoted values may hold line breaks; without this a block cut inside one breaks the read.
    parse = csv.ParseOptions(newlines_in_values=True)
    # The header comes from a copy of the first block, so no second streaming reader (which
    # reads ahead) is left open on ``fh`` while the main one reads it.
    names = csv.open_csv(io.BytesIO(head), read_options=read, parse_options=parse).schema.names
    _unique(names, uri, "header")
    convert = csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    empty = True
    for batch in csv.open_csv(fh, read_options=read, parse_options=parse, convert_options=convert):
        empty = False
        yield batch
    if empty:  # a header only: one empty batch still carries the header to the output
        schema = pa.schema([(name, pa.string()) for name in names])
        yield pa.RecordBatch.from_pylist([], schema=schema)


def _jsonl(fh: Any, batch_rows: int, uri: str) -> Iterator[Batch]:
    run = _RUN.get()
    log = None if run is None else run.lines
    # Arrow (Parquet, CSV) needs valid UTF-8: refuse a lone surrogate where it is read.
    utf8_only = run is not None and run.fmt != "jsonl"
    batch: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise InputDataError(
                f"line {number} of {safe_uri(uri)!r} is not valid JSON; fix or remove it"
            ) from None
        if not isinstance(record, dict):
            raise InputDataError(f"line {number} of {safe_uri(uri)!r} is not a JSON object")
        if utf8_only and _SURROGATE_ESCAPE.search(line) and _has_surrogate(record):
            _refuse_surrogate(record, number, uri, run.fmt if run is not None else "")
        batch.append(record)
        lines.append(number)
        if len(batch) >= batch_rows:
            if log is not None:
                log.append(lines)
            yield batch
            batch, lines = [], []
    if batch:
        if log is not None:
            log.append(lines)
        yield batch


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _refuse_surrogate(record: dict[str, Any], number: int, uri: str, fmt: str) -> None:
    column = next(k for k, v in record.items() if _has_surrogate(k) or _has_surrogate(v))
    raise InputDataError(
        f"column {column!r} at line {number} of {safe_uri(uri)!r} holds a lone UTF-16 "
        f"surrogate escape, which {fmt} cannot store; write JSONL output (it keeps the escape) "
        "or fix the input"
    )


def _escape_surrogates(text: str) -> str:
    """``text`` (JSON) with each lone surrogate written as its ``\\uXXXX`` escape."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _conform(pa: Any, column: Any, target: Any) -> Any:
    """``column`` cast to ``target`` when that loses nothing (nulls, int to float), else None."""
    if column.type == target:
        return column
    try:
        unified = pa.unify_schemas(
            [pa.schema([("c", target)]), pa.schema([("c", column.type)])],
            promote_options="permissive",
        ).field(0)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    # Only when ``target`` already holds every value ``column`` can: a struct cast to fewer
    # fields, say, would silently drop the others.
    if unified.type != target:
        return None
    try:
        return column.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


class _CSVWriter:
    """Appends tables to a CSV file, header first, quoting only the fields that need it.

    Untouched cells come back as they were read (every column is read as text), which
    :func:`pyarrow.csv.CSVWriter` would not do: it quotes every string.
    """

    def __init__(self, path: str) -> None:
        self._fh = open(path, "wb")  # noqa: SIM115
        self._header = True

    def write_table(self, table: Any) -> None:
        _write_csv(table, self._fh, header=self._header)
        self._header = False

    def close(self) -> None:
        self._fh.close()


class _Writer:
    """Writes batches of one format to a local path, opening it on the first batch.

    The first batch fixes a Parquet or CSV output's columns (and Parquet's types); later batches
    are fitted to them or refused with an :class:`InputDataError`, never cut down.
    """

    def __init__(
        self,
        fmt: str,
        path: str,
        uri: str | None = None,
        lines: collections.deque[list[int]] | None = None,
    ) -> None:
        self.fmt = fmt
        self.path = path
        self.uri = path if uri is None else uri
        self._writer: Any = None
        self._schema: Any = None
        self._fh: Any = None
        self._lines = lines
        self._rows = 0  # rows written so far
        self._fixed = 0  # rows of the first batch, which fixed the columns
        self._batch_lines: list[int] | None = None

    # --- where a row is, for messages ------------------------------------------------------

    def _where(self, row: int) -> str:
        """The row-th row of the current batch, as a line of the input (JSONL) or a row."""
        if self._batch_lines is not None and row < len(self._batch_lines):
            return f"line {self._batch_lines[row]:,}"
        return f"row {self._rows + row + 1:,}"

    def _span(self, rows: int) -> str:
        if rows <= 1:
            return self._where(0)
        first, last = self._where(0), self._where(rows - 1).split(" ", 1)[1]
        return f"{first.replace('line', 'lines', 1).replace('row', 'rows', 1)}-{last}"

    # --- writing ---------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Write one batch (records or an Arrow batch/table), opening the output on the first."""
        self._batch_lines = None
        if isinstance(batch, list) and self._lines:
            self._batch_lines = self._lines.popleft()
        if self.fmt == "jsonl":
            rows = batch if isinstance(batch, list) else batch.to_pylist()
            self._write_jsonl(rows)
            self._rows += len(rows)
            return
        pa = require("pyarrow", "pii")
        if isinstance(batch, list):
            table = self._from_records(pa, batch)
        else:
            table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
            if self._schema is not None:
                table = self._fit(pa, {n: table.column(n) for n in table.column_names}, table)
        if self.fmt == "csv":
            self._check_flat(pa, table)
        if self._writer is None:
            self._schema = table.schema
            self._fixed = table.num_rows
            if self.fmt == "parquet":
                pq = require("pyarrow.parquet", "pii")
                self._writer = pq.ParquetWriter(self.path, self._schema)
            else:
                self._writer = _CSVWriter(self.path)
        if self.fmt == "csv":
            self._write_csv(table)
        else:
            self._writer.write_table(table)
        self._rows += table.num_rows

    def _write_jsonl(self, rows: list[dict[str, Any]]) -> None:
        if self._fh is None:
            self._fh = open(self.path, "wb")  # noqa: SIM115
        text = "".join(
            json.dumps(row, default=json_default, ensure_ascii=False) + "\n" for row in rows
        )
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (read from a valid ``\ud83d`` escape) has no UTF-8 form: write it
            # back as the escape it came from, so a JSONL round trip keeps the value.
            data = _escape_surrogates(text).encode("utf-8")
        self._fh.write(data)

    def _write_csv(self, table: Any) -> None:
        try:
            self._writer.write_table(table)
        except GuardflowError:
            raise
        except Exception as exc:
            # Raised here rather than by guardflow.tables, whose CSV message always blames
            # nested values: the table was checked for those already.
            reason = str(exc) if isinstance(exc, OSError) else type(exc).__name__
            raise OutputWriteError(
                f"could not write the csv output to {safe_uri(self.uri)!r} ({reason}); "
                "nothing was left there"
            ) from (exc if isinstance(exc, OSError) else None)

    def _check_flat(self, pa: Any, table: Any) -> None:
        for field in table.schema:
            if pa.types.is_nested(field.type):
                raise InputDataError(
                    f"column {field.name!r} holds nested values (lists, structs), which CSV "
                    "cannot store; nested values need .parquet or .jsonl output"
                )

    def _from_records(self, pa: Any, batch: list[dict[str, Any]]) -> Any:
        """One table from a batch of records: every key of every record is a column."""
        names = list(dict.fromkeys(k for r in batch for k in r))
        known = set(self._schema.names) if self._schema is not None else None
        for row, record in enumerate(batch):
            for name in record:
                if _SURROGATE.search(name):
                    raise InputDataError(
                        f"a key at {self._where(row)} of the input holds a lone UTF-16 "
                        f"surrogate escape, which {self.fmt} cannot store; write JSONL output"
                    )
                if known is not None and name not in known:
                    self._new_column(name, row)
        columns: dict[str, Any] = {}
        for name in names:
            values = [r.get(name) for r in batch]
            try:
                columns[name] = pa.chunked_array([pa.array(values)])
            except UnicodeEncodeError:
                row = next(i for i, v in enumerate(values) if _has_surrogate(v))
                raise InputDataError(
                    f"column {name!r} at {self._where(row)} of the input holds a lone UTF-16 "
                    f"surrogate escape, which {self.fmt} cannot store; write JSONL output "
                    "(it keeps the escape) or fix the input"
                ) from None
            except (
                pa.ArrowInvalid,
                pa.ArrowTypeError,
                pa.ArrowNotImplementedError,
                OverflowError,
            ) as exc:
                raise InputDataError(
                    f"column {name!r} {self._odd_row(values)} cannot be stored in one "
                    f"{self.fmt} column ({type(exc).__name__}): its values mix types (after "
                    "masking) or a number is out of range; make each column's values one "
                    "type, or write JSONL output"
                ) from None
        if self._schema is None:
            if not columns:  # rows without a column: Arrow would keep none of them
                raise InputDataError(
                    f"the records at {self._span(len(batch))} of the input have no fields, and "
                    f"the first batch fixes a {self.fmt} output's columns: its rows would be "
                    "lost; write JSONL output, or give the first records their fields (even as "
                    "null)"
                )
            return pa.table(columns)
        return self._fit(
            pa, columns, None, values_of=lambda n: [r.get(n) for r in batch], rows=len(batch)
        )

    def _odd_row(self, values: list[Any]) -> str:
        """Where a column's values first stop being of one kind, for a message."""
        first = None
        for row, value in enumerate(values):
            if value is None:
                continue
            kind = _kind(value)
            if first is None:
                first = kind
            elif kind != first:
                return f"at {self._where(row)} of the input"
        return f"in {self._span(len(values))} of the input"

    def _new_column(self, name: str, row: int) -> None:
        fixed = self._fixed
        raise InputDataError(
            f"column {name!r} first appears at {self._where(row)} of the input, after the "
            f"{self.fmt} output's columns were fixed by the first {fixed:,} rows; write JSONL "
            "output, or make the column appear (even as null) in the first rows"
        )

    def _fit(
        self,
        pa: Any,
        columns: dict[str, Any],
        table: Any,
        values_of: Callable[[str], list[Any]] | None = None,
        rows: int | None = None,
    ) -> Any:
        """The batch's columns in the output's order and types: missing ones as nulls.

        ``rows``: the batch's row count, which a batch of records without any field (``{}``)
        cannot tell from its columns.
        """
        if rows is None and table is not None:
            rows = table.num_rows
        for name in columns:
            if name not in self._schema.names:
                self._new_column(name, 0)
            if rows is None:
                rows = len(columns[name])
        rows = rows or 0
        arrays = []
        for field in self._schema:
            column = columns.get(field.name)
            if column is None:
                column = pa.chunked_array([pa.nulls(rows, field.type)])
            elif self.fmt == "parquet" and column.type != field.type:
                fitted = _conform(pa, column, field.type)
                if fitted is None:
                    self._misfit(pa, field, column, values_of)
                column = fitted
            arrays.append(column)
        if self.fmt == "parquet":
            return pa.Table.from_arrays(arrays, schema=self._schema)
        return pa.Table.from_arrays(arrays, names=self._schema.names)  # CSV: only names matter

    def _misfit(
        self,
        pa: Any,
        field: Any,
        column: Any,
        values_of: Callable[[str], list[Any]] | None,
    ) -> None:
        row = None
        if values_of is not None:  # records: the first value that does not fit
            for i, value in enumerate(values_of(field.name)):
                if value is None:
                    continue
                try:
                    one = pa.array([value])
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    row = i
                    break
                if _conform(pa, one, field.type) is None:
                    row = i
                    break
        if row is None:  # an Arrow batch: its first value
            valid = column.is_valid().to_pylist()
            row = valid.index(True) if True in valid else 0
        fixed = self._fixed
        if pa.types.is_null(field.type):
            was = f"null in all of the first {fixed:,} rows, which fixed its Parquet type as null"
        else:
            was = f"of type {field.type} in the first {fixed:,} rows, which fixed its Parquet type"
        raise InputDataError(
            f"column {field.name!r} was {was}; at {self._where(row)} of the input it holds "
            f"{column.type} values that type cannot hold. Write JSONL or CSV output, or make "
            "the first rows hold values of the column's widest type"
        )

    def close(self) -> None:
        """Close the output; an input that gave no batch at all gives an empty output."""
        if self._writer is not None:
            self._writer.close()
        if self._fh is not None:
            self._fh.close()
        if self._writer is None and self._fh is None:
            # An input with no rows gives an empty output (a valid, column-less Parquet file).
            if self.fmt == "parquet":
                pa = require("pyarrow", "pii")
                require("pyarrow.parquet", "pii").write_table(pa.table({}), self.path)
            else:
                Path(self.path).touch()


def write_batches(uri: str, batches: Callable[[], Iterator[Batch]]) -> None:
    """Write every batch ``batches()`` yields to ``uri`` atomically, as each one comes.

    The first batch fixes a Parquet or CSV output's columns; see the module's docstring.

    Raises:
        InputDataError: A later batch has a column the first did not, or values that do not fit
            a Parquet column's type, or (Parquet/CSV) a lone surrogate; nothing was left.
        OutputWriteError: The output could not be written; nothing was left at ``uri``.
        GuardflowError: Reading or masking failed half-way (re-raised as is); nothing was left.
    """
    fmt = table_format(uri)
    failure: list[GuardflowError] = []
    run = _Run(fmt)
    token = _RUN.set(run)

    def write(path: str) -> None:
        writer = _Writer(fmt, path, uri, run.lines)
        try:
            for batch in batches():
                writer.write(batch)
        except GuardflowError as exc:
            failure.append(exc)
            raise
        finally:
            writer.close()

    try:
        _atomic(os.fspath(uri), write, what=f"{fmt} output")
    except OutputWriteError:
        if failure:
            raise failure[0] from None
        raise
    finally:
        _RUN.reset(token)
