"""Masking files in bounded memory: Parquet row groups, CSV blocks, JSONL batches, atomic output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.errors import InputDataError
from guardflow.pii import Detector, PIIPolicy, _stream, mask_file, scan_file
from guardflow.testing.vault_server import assert_secret_absent

EMAIL = "stream.planted@example.org"
SSN = "536-22-8126"
ROW_GROUPS = 20
ROWS_PER_GROUP = 500

POLICY = PIIPolicy.model_validate(
    {"columns": {"email": {"entity": "EMAIL_ADDRESS"}}, "free_text_columns": ["notes"]}
)


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "email": f"user{i}.{EMAIL}",
            "notes": f"row {i}: ssn {SSN}, padding {'x' * 200}" if i % 2 else None,
            "zip": f"{i % 1000:05d}",
        }
        for i in range(start, start + n)
    ]


def _parquet(path: Path) -> Path:
    schema = pa.schema(
        [("id", pa.int64()), ("email", pa.string()), ("notes", pa.string()), ("zip", pa.string())]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for g in range(ROW_GROUPS):
            rows = _rows(ROWS_PER_GROUP, g * ROWS_PER_GROUP)
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    return path


def test_parquet_is_masked_row_group_by_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _parquet(tmp_path / "in.parquet")
    events: list[str] = []
    peak: list[int] = []
    real_read, real_write = _stream.read_batches, _stream._Writer.write

    def read(uri: str, **kwargs: Any) -> Iterator[Any]:
        for batch in real_read(uri, **kwargs):
            events.append("read")
            yield batch

    def write(self: Any, batch: Any) -> None:
        events.append("write")
        peak.append(pa.total_allocated_bytes())
        real_write(self, batch)

    monkeypatch.setattr(_stream, "read_batches", read)
    monkeypatch.setattr(_stream._Writer, "write", write)
    report = mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=ROWS_PER_GROUP)

    # Each batch is written before the next one is read: one batch in memory at a time.
    assert events == ["read", "write"] * ROW_GROUPS
    assert report.batches == ROW_GROUPS
    whole = pq.read_table(source)
    assert max(peak) < whole.nbytes / 4
    out = pq.ParquetFile(tmp_path / "out.parquet")
    assert out.metadata.num_row_groups == ROW_GROUPS
    table = out.read()
    assert table.num_rows == ROW_GROUPS * ROWS_PER_GROUP
    assert set(table.column("email").to_pylist()) == {"<EMAIL_ADDRESS>"}
    assert table.column("zip").to_pylist() == whole.column("zip").to_pylist()
    assert report.counts == {
        "email": {"EMAIL_ADDRESS": ROW_GROUPS * ROWS_PER_GROUP},
        "notes": {"US_SSN": ROW_GROUPS * ROWS_PER_GROUP // 2},
    }


def test_masked_parquet_rescanned_holds_no_pii(tmp_path: Path) -> None:
    source = _parquet(tmp_path / "in.parquet")
    mask_file(source, tmp_path / "out.parquet", POLICY)
    again = scan_file(tmp_path / "out.parquet", PIIPolicy(free_text_columns=["email", "notes"]))
    assert again.total == 0
    texts = pq.read_table(tmp_path / "out.parquet").column("notes").to_pylist()
    assert Detector().detect_many(texts) == [[] for _ in texts]


def test_csv_is_streamed_and_keeps_text_exactly(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pacsv.write_csv(pa.Table.from_pylist(_rows(300)), source)
    report = mask_file(source, tmp_path / "out.csv", POLICY)
    out = pacsv.read_csv(
        tmp_path / "out.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
    )
    assert out.num_rows == 300
    assert set(out.column("email").to_pylist()) == {"<EMAIL_ADDRESS>"}
    assert out.column("notes").to_pylist()[1] == f"row 1: ssn <US_SSN>, padding {'x' * 200}"
    assert report.counts["notes"] == {"US_SSN": 150}
    assert "00007" in (tmp_path / "out.csv").read_text(encoding="utf-8")  # zip kept as text


def test_jsonl_is_masked_in_line_batches_with_nested_paths(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [{"id": i, "user": {"email": EMAIL, "ssn": SSN}, "n": i} for i in range(25)]
    source.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    policy = PIIPolicy.model_validate(
        {"columns": {"user": {"entity": "EMAIL_ADDRESS", "json_paths": ["$.email"]}}}
    )
    report = mask_file(source, tmp_path / "out.jsonl", policy, batch_rows=10)
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert report.batches == 3
    assert len(out) == 25
    assert out[0] == {"id": 0, "user": {"email": "<EMAIL_ADDRESS>", "ssn": SSN}, "n": 0}


def test_parquet_to_jsonl(tmp_path: Path) -> None:
    source = _parquet(tmp_path / "in.parquet")
    mask_file(source, tmp_path / "out.jsonl", POLICY)
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[1])
    assert first["email"] == "<EMAIL_ADDRESS>"
    assert first["notes"].startswith("row 1: ssn <US_SSN>")


def test_failure_half_way_leaves_no_output(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    good = "".join(json.dumps({"email": EMAIL}) + "\n" for _ in range(25))
    source.write_text(good + "{not json\n", encoding="utf-8")
    target = tmp_path / "out" / "masked.jsonl"
    sink = MemoryAuditSink()
    with pytest.raises(InputDataError, match="line 26") as info:
        mask_file(source, target, POLICY, batch_rows=10, audit_sink=sink)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == []  # no temporary file left either
    assert [e.outcome for e in sink.events] == ["failed"]
    assert_secret_absent(EMAIL, str(info.value), sink.events[0].model_dump_json())


def test_failure_keeps_a_previous_output_unchanged(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"email": EMAIL}) + "\n[1]\n", encoding="utf-8")
    target = tmp_path / "masked.jsonl"
    target.write_text("previous\n", encoding="utf-8")
    with pytest.raises(InputDataError):
        mask_file(source, target, POLICY, batch_rows=1)
    assert target.read_text(encoding="utf-8") == "previous\n"


def test_mask_and_scan_file_leave_one_audit_event_with_counts_only(tmp_path: Path) -> None:
    source = _parquet(tmp_path / "in.parquet")
    sink = MemoryAuditSink()
    report = mask_file(source, tmp_path / "out.parquet", POLICY, audit_sink=sink)
    scan = scan_file(source, POLICY, audit_sink=sink)
    assert [e.step_kind for e in sink.events] == ["pii", "pii"]
    assert [e.attributes["mode"] for e in sink.events] == ["mask", "scan"]
    assert sink.events[0].counts["entities"] == report.total == scan.total
    assert sink.events[0].output_fingerprints["output"].startswith("sha256:")
    assert report.output_uri == str(tmp_path / "out.parquet")
    for value in (EMAIL, SSN):
        assert_secret_absent(value, [e.model_dump_json() for e in sink.events])
        assert_secret_absent(value, report.model_dump_json(), scan.model_dump_json())


def test_missing_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"nope\.parquet"):
        mask_file(tmp_path / "nope.parquet", tmp_path / "out.parquet", POLICY)
    assert not (tmp_path / "out.parquet").exists()
