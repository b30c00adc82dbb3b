"""Files in bounded memory: read in batches, write each masked batch out before the next is read.

Parquet is read row group by row group (:meth:`pyarrow.parquet.ParquetFile.iter_batches`, one
reader per row group, so nothing read earlier stays buffered), CSV block by block
(:func:`pyarrow.csv.open_csv`, every column read as text so values keep their exact form: leading
zeros, ``+`` signs), JSON Lines in batches of lines (as records, so nested values keep their
shape). Output goes to a temporary file renamed into place (or uploaded in one
piece) by :mod:`guardflow.tables`, so a failure half-way leaves nothing at the destination.
"""

from __future__ import annotations

import json
import os
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


def _open(uri: str) -> Any:
    path = local_path(uri)
    if path is not None:
        if not Path(path).is_file():
            raise InputDataError(f"input {safe_uri(uri)!r} does not exist (or is not a file)")
        return open(path, "rb")  # closed by the generator that reads it
    return require("fsspec", "data").open(uri, "rb").open()


def read_batches(uri: str, *, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """Yield the batches of a Parquet, CSV or JSONL file, one at a time.

    Raises:
        InputDataError: The file is missing or unreadable (never quoting its content).
    """
    fmt = table_format(uri)
    fh = _open(uri)
    try:
        if fmt == "parquet":
            yield from _parquet(fh, batch_rows)
        elif fmt == "csv":
            yield from _csv(fh)
        else:
            yield from _jsonl(fh, batch_rows, uri)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise InputDataError(
            f"could not read {fmt} input {safe_uri(uri)!r} ({type(exc).__name__}); "
            f"check that it is a valid {fmt} file"
        ) from None
    finally:
        fh.close()


def _parquet(fh: Any, batch_rows: int) -> Iterator[Batch]:
    pq = require("pyarrow.parquet", "pii")
    parquet = pq.ParquetFile(fh)
    # One reader per row group: a single reader over the whole file keeps the pre-buffered
    # bytes of every row group it has read until it finishes (pyarrow's ``pre_buffer``, on by
    # default), so memory grew with the file size (+770 MiB reading a 1 GB file, against
    # +130 MiB this way). Pre-buffering still coalesces the reads inside each row group, which
    # is what makes remote files fast.
    for group in range(parquet.num_row_groups):
        yield from parquet.iter_batches(batch_size=batch_rows, row_groups=[group])


def _csv(fh: Any) -> Iterator[Batch]:
    pa = require("pyarrow", "pii")
    csv = require("pyarrow.csv", "pii")
    read = csv.ReadOptions(block_size=_CSV_BLOCK)
    # Quoted values may hold line breaks; without this a block cut inside one breaks the read.
    parse = csv.ParseOptions(newlines_in_values=True)
    probe = csv.open_csv(fh, read_options=read, parse_options=parse)
    names = probe.schema.names
    fh.seek(0)
    convert = csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    yield from csv.open_csv(fh, read_options=read, parse_options=parse, convert_options=convert)


def _jsonl(fh: Any, batch_rows: int, uri: str) -> Iterator[Batch]:
    batch: list[dict[str, Any]] = []
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
        batch.append(record)
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch


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
    """Writes batches of one format to a local path, opening it on the first batch."""

    def __init__(self, fmt: str, path: str) -> None:
        self.fmt = fmt
        self.path = path
        self._writer: Any = None
        self._schema: Any = None
        self._fh: Any = None

    def write(self, batch: Batch) -> None:
        if self.fmt == "jsonl":
            if self._fh is None:
                self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            rows = batch if isinstance(batch, list) else batch.to_pylist()
            self._fh.writelines(
                json.dumps(row, default=json_default, ensure_ascii=False) + "\n" for row in rows
            )
            return
        pa = require("pyarrow", "pii")
        table = pa.Table.from_pylist(batch) if isinstance(batch, list) else batch
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if self._writer is None:
            self._schema = table.schema
            if self.fmt == "parquet":
                pq = require("pyarrow.parquet", "pii")
                self._writer = pq.ParquetWriter(self.path, self._schema)
            else:
                self._writer = _CSVWriter(self.path)
        elif table.schema != self._schema:
            table = table.select(self._schema.names).cast(self._schema)
        self._writer.write_table(table)

    def close(self) -> None:
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

    Raises:
        OutputWriteError: The output could not be written; nothing was left at ``uri``.
        GuardflowError: Reading or masking failed half-way (re-raised as is); nothing was left.
    """
    fmt = table_format(uri)
    failure: list[GuardflowError] = []

    def write(path: str) -> None:
        writer = _Writer(fmt, path)
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
