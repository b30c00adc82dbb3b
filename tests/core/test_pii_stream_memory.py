"""Masking a file keeps one batch alive at a time: memory follows the batch, not the file."""

from __future__ import annotations

import os
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from guardflow.pii import PIIPolicy, _stream, mask_file

ROW_GROUPS = 40
ROWS_PER_GROUP = 200
POLICY = PIIPolicy.model_validate(
    {"columns": {"email": {"entity": "EMAIL_ADDRESS"}}, "free_text_columns": ["notes"]}
)


def _parquet(path: Path) -> Path:
    schema = pa.schema([("id", pa.int64()), ("email", pa.string()), ("notes", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for g in range(ROW_GROUPS):
            ids = range(g * ROWS_PER_GROUP, (g + 1) * ROWS_PER_GROUP)
            rows = [
                {"id": i, "email": f"user{i}@example.org", "notes": f"row {i}, {'x' * 300}"}
                for i in ids
            ]
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    return path


class _Liveness:
    """Weak references to every batch read and written, counted at each new read."""

    def __init__(self) -> None:
        self.read: list[weakref.ref[Any]] = []
        self.written: list[weakref.ref[Any]] = []
        self.alive_at_read: list[tuple[int, int]] = []
        self.allocated_at_read: list[int] = []

    def on_read(self) -> None:
        alive_in = sum(ref() is not None for ref in self.read)
        alive_out = sum(ref() is not None for ref in self.written)
        self.alive_at_read.append((alive_in, alive_out))
        self.allocated_at_read.append(pa.total_allocated_bytes())


@pytest.fixture
def liveness(monkeypatch: pytest.MonkeyPatch) -> _Liveness:
    seen = _Liveness()
    real_read, real_write = _stream.read_batches, _stream._Writer.write

    def read(uri: str, **kwargs: Any) -> Iterator[Any]:
        for batch in real_read(uri, **kwargs):
            seen.on_read()
            seen.read.append(weakref.ref(batch))
            yield batch
            del batch  # this wrapper must not be what keeps a batch alive

    def write(self: Any, batch: Any) -> None:
        seen.written.append(weakref.ref(batch))
        real_write(self, batch)

    monkeypatch.setattr(_stream, "read_batches", read)
    monkeypatch.setattr(_stream._Writer, "write", write)
    return seen


def test_earlier_batches_are_freed_before_the_next_is_read(
    tmp_path: Path, liveness: _Liveness
) -> None:
    source = _parquet(tmp_path / "in.parquet")
    report = mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=ROWS_PER_GROUP)

    assert report.batches == ROW_GROUPS
    assert len(liveness.read) == len(liveness.written) == ROW_GROUPS
    # At most the previous batch (still bound to a loop variable) is alive when the next is read,
    # whether it is an input batch or its masked output.
    assert max(alive for alive, _ in liveness.alive_at_read) <= 1
    assert max(alive for _, alive in liveness.alive_at_read) <= 1
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_rows == ROW_GROUPS * ROWS_PER_GROUP


def test_arrow_memory_does_not_grow_with_the_number_of_batches(
    tmp_path: Path, liveness: _Liveness
) -> None:
    source = _parquet(tmp_path / "in.parquet")
    one_group = pq.ParquetFile(source).read_row_group(0).nbytes
    mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=ROWS_PER_GROUP)

    allocated = liveness.allocated_at_read
    early, late = max(allocated[1:5]), max(allocated[-5:])
    # Kept batches would add a row group's worth of Arrow buffers per batch (40 in all).
    assert late <= early + 2 * one_group


def test_reading_parquet_holds_one_row_group_not_the_file(tmp_path: Path) -> None:
    # Incompressible text, so a row group's bytes on disk are what a batch costs to read.
    source = tmp_path / "random.parquet"
    schema = pa.schema([("text", pa.string())])
    with pq.ParquetWriter(source, schema, compression="none", use_dictionary=False) as writer:
        for _ in range(ROW_GROUPS):
            texts = [os.urandom(150).hex() for _ in range(ROWS_PER_GROUP)]
            writer.write_table(pa.table({"text": texts}, schema=schema))
    one_group = pq.ParquetFile(source).metadata.row_group(0).total_byte_size
    before = pa.total_allocated_bytes()
    held: list[int] = []

    tracemalloc.start()  # pyarrow reads a Python file handle into Python bytes, traced here
    try:
        for batch in _stream.read_batches(str(source), batch_rows=ROWS_PER_GROUP):
            arrow = pa.total_allocated_bytes() - before
            held.append(tracemalloc.get_traced_memory()[0] + arrow)
            del batch
    finally:
        tracemalloc.stop()

    assert len(held) == ROW_GROUPS
    # The batch and the bytes it was decoded from: about two row groups. A reader that buffers
    # ahead over the whole file (pyarrow's pre-buffering across row groups) holds all 40.
    assert max(held) <= 5 * one_group
