"""`mask_file` edge cases: schemas changing between batches, empty inputs, lone surrogates.

Bad input must give an InputDataError naming the line (or row) and the column, never a cell
value, and leave no output behind; no column may ever be dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from guardflow.errors import InputDataError
from guardflow.pii import PIIPolicy, _stream, mask_file
from guardflow.testing.cli import run_cli

POLICY = PIIPolicy.model_validate({"free_text_columns": ["body"]})
SECRET = "zq-cell-value-7731"  # a cell value that must never reach a message
HINT = "nested values"


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _no_output(tmp_path: Path, name: str) -> None:
    assert not (tmp_path / name).exists()
    assert not list(tmp_path.glob(f".{name}.*.tmp"))


# -- 1. the schema changes between batches ------------------------------------------------------


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_column_first_seen_after_the_first_batch_is_refused_not_dropped(
    tmp_path: Path, suffix: str
) -> None:
    rows = [{"id": 1, "body": "a"}, {"id": 2, "body": "b"}, {"id": 3, "note": SECRET}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(InputDataError, match=r"column 'note' first appears at line 3") as info:
        mask_file(source, tmp_path / f"out.{suffix}", POLICY, batch_rows=2)
    assert "first 2 rows" in str(info.value)
    assert "JSONL" in str(info.value)
    assert SECRET not in str(info.value)
    _no_output(tmp_path, f"out.{suffix}")


def test_the_error_counts_the_rows_of_the_first_batch_not_all_rows_so_far(
    tmp_path: Path,
) -> None:
    rows = [{"id": i, "body": "a"} for i in range(5)] + [{"id": 5, "note": "x"}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(InputDataError, match=r"line 6.*fixed by the first 2 rows"):
        mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=2)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_later_batch_of_empty_records_keeps_its_rows(tmp_path: Path, suffix: str) -> None:
    rows: list[dict[str, Any]] = [{"id": 1, "body": "a"}, {"id": 2, "body": "b"}, {}, {}, {}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    mask_file(source, tmp_path / f"out.{suffix}", POLICY, batch_rows=2)
    if suffix == "parquet":
        out = pq.read_table(tmp_path / "out.parquet").to_pylist()
    else:
        out = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(out) == 5


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_first_batch_of_empty_records_is_refused_not_lost(tmp_path: Path, suffix: str) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{}, {}, {"body": SECRET}])
    with pytest.raises(InputDataError, match=r"records at lines 1-2 of the input have no fields"):
        mask_file(source, tmp_path / f"out.{suffix}", POLICY, batch_rows=2)
    _no_output(tmp_path, f"out.{suffix}")
    mask_file(source, tmp_path / "out.jsonl", POLICY, batch_rows=2)  # JSONL keeps every row
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def test_the_error_names_the_line_even_after_blank_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1}\n\n{"id": 2}\n\n{"id": 3, "note": "x"}\n', encoding="utf-8")
    with pytest.raises(InputDataError, match=r"column 'note' first appears at line 5"):
        mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=2)


def test_a_new_column_at_row_65537_is_refused_by_the_cli(tmp_path: Path) -> None:
    rows = 65_537
    lines = [json.dumps({"id": i}) for i in range(rows - 1)]
    lines.append(json.dumps({"id": rows, "note": SECRET}))
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text("free_text_columns: [body]\n", "utf-8")
    out = run_cli(
        "pii", "mask", str(source), str(tmp_path / "out.parquet"), "--policy", str(policy),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "column 'note' first appears at line 65,537" in out.stderr
    assert SECRET not in out.stderr + out.stdout
    _no_output(tmp_path, "out.parquet")


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_key_only_in_a_later_row_of_the_first_batch_is_kept(tmp_path: Path, suffix: str) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{"id": 1}, {"id": 2, "note": "kept"}])
    mask_file(source, tmp_path / f"out.{suffix}", POLICY)
    if suffix == "parquet":
        assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [
            {"id": 1, "note": None},
            {"id": 2, "note": "kept"},
        ]
    else:
        assert (tmp_path / "out.csv").read_text() == "id,note\n1,\n2,kept\n"


def test_a_column_null_in_the_first_batch_then_text_is_a_clear_error_for_parquet(
    tmp_path: Path,
) -> None:
    rows = [{"id": 1, "body": None}, {"id": 2, "body": None}, {"id": 3, "body": SECRET}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(InputDataError, match=r"column 'body' was null .* at line 3") as info:
        mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=2)
    assert SECRET not in str(info.value)
    assert "ArrowNotImplementedError" not in str(info.value)
    _no_output(tmp_path, "out.parquet")


def test_a_column_null_in_the_first_batch_then_text_is_written_to_csv(tmp_path: Path) -> None:
    rows = [{"id": 1, "body": None}, {"id": 2, "body": None}, {"id": 3, "body": "hello"}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    mask_file(source, tmp_path / "out.csv", POLICY, batch_rows=2)
    assert (tmp_path / "out.csv").read_text() == "id,body\n1,\n2,\n3,hello\n"


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_column_missing_from_a_later_batch_is_filled_with_nulls(
    tmp_path: Path, suffix: str
) -> None:
    rows = [{"id": 1, "x": 1.5}, {"id": 2, "x": 2.5}, {"id": 3}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    mask_file(source, tmp_path / f"out.{suffix}", POLICY, batch_rows=2)
    if suffix == "parquet":
        table = pq.read_table(tmp_path / "out.parquet")
        assert table.to_pylist() == [
            {"id": 1, "x": 1.5},
            {"id": 2, "x": 2.5},
            {"id": 3, "x": None},
        ]
    else:
        assert (tmp_path / "out.csv").read_text() == "id,x\n1,1.5\n2,2.5\n3,\n"


def test_later_nulls_and_integers_fit_a_float_column(tmp_path: Path) -> None:
    rows = [{"id": 1, "x": 1.5}, {"id": 2, "x": 2.5}, {"id": 3, "x": 3}, {"id": 4, "x": None}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=2)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("x").type == pa.float64()
    assert table.column("x").to_pylist() == [1.5, 2.5, 3.0, None]


def test_a_later_value_wider_than_the_fixed_type_is_refused(tmp_path: Path) -> None:
    rows = [{"id": 1, "x": 1}, {"id": 2, "x": 2}, {"id": 3, "x": 3}, {"id": 4, "x": 4.25}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(InputDataError, match=r"column 'x' was of type int64 .* at line 4") as info:
        mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=2)
    assert "4.25" not in str(info.value)
    _no_output(tmp_path, "out.parquet")


def test_a_nested_field_first_seen_in_a_later_batch_is_refused_not_dropped(
    tmp_path: Path,
) -> None:
    rows = [{"u": {"a": "x"}}, {"u": {"a": "y"}}, {"u": {"a": "z", "b": SECRET}}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(InputDataError, match=r"column 'u' .* at line 3") as info:
        mask_file(source, tmp_path / "out.parquet", POLICY, batch_rows=2)
    assert SECRET not in str(info.value)
    _no_output(tmp_path, "out.parquet")


def test_values_of_mixed_types_name_the_line_not_the_value(tmp_path: Path) -> None:
    rows = [{"id": 1, "x": 1}, {"id": 2, "x": SECRET}]
    source = _jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(InputDataError, match=r"column 'x' at line 2") as info:
        mask_file(source, tmp_path / "out.parquet", POLICY)
    assert SECRET not in str(info.value)


# -- 2. empty inputs ---------------------------------------------------------------------------


@pytest.fixture
def empty_parquet(tmp_path: Path) -> Path:
    schema = pa.schema([("id", pa.int64()), ("body", pa.string())])
    pq.write_table(schema.empty_table(), tmp_path / "in.parquet")
    return tmp_path / "in.parquet"


def test_a_zero_row_parquet_file_keeps_its_schema(tmp_path: Path, empty_parquet: Path) -> None:
    mask_file(empty_parquet, tmp_path / "out.parquet", POLICY)
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.num_rows == 0
    assert out.schema.names == ["id", "body"]
    assert out.schema.field("id").type == pa.int64()
    mask_file(empty_parquet, tmp_path / "out.csv", POLICY)
    assert (tmp_path / "out.csv").read_text() == "id,body\n"


@pytest.mark.parametrize("header", ["id,body\n", "id,body"])
def test_a_header_only_csv_keeps_its_header(tmp_path: Path, header: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text(header, encoding="utf-8")
    mask_file(source, tmp_path / "out.csv", POLICY)
    assert (tmp_path / "out.csv").read_text() == "id,body\n"
    mask_file(source, tmp_path / "out.parquet", POLICY)
    out = pq.read_table(tmp_path / "out.parquet")
    assert (out.num_rows, out.schema.names) == (0, ["id", "body"])


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_a_zero_byte_csv_gives_an_empty_output_like_a_zero_byte_jsonl(
    tmp_path: Path, suffix: str
) -> None:
    (tmp_path / "in.csv").write_bytes(b"")
    (tmp_path / "in.jsonl").write_bytes(b"")
    policy = tmp_path / "policy.yaml"
    policy.write_text("free_text_columns: [body]\n", "utf-8")
    outputs = []
    for name in ("in.csv", "in.jsonl"):
        target = tmp_path / f"{name.replace('.', '_')}.{suffix}"
        out = run_cli(
            "pii", "mask", str(tmp_path / name), str(target), "--policy", str(policy),
            cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        outputs.append(target)
    if suffix == "parquet":
        tables = [pq.read_table(p) for p in outputs]
        assert tables[0].equals(tables[1])
        assert tables[0].num_rows == 0
    else:
        assert [p.read_bytes() for p in outputs] == [b"", b""]


# -- 3. lone UTF-16 surrogate escapes ----------------------------------------------------------

SURROGATE_LINE = '{"id": 1, "body": "hi \\ud83d there"}\n'


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_lone_surrogate_is_a_clear_error_for_parquet_and_csv(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 0, "body": "fine"}\n' + SURROGATE_LINE, encoding="utf-8")
    with pytest.raises(InputDataError, match=r"column 'body' at line 2") as info:
        mask_file(source, tmp_path / f"out.{suffix}", POLICY)
    message = str(info.value)
    assert "lone UTF-16 surrogate" in message
    assert "hi" not in message.replace("which", "")
    assert "there" not in message
    assert HINT not in message
    assert "UnicodeEncodeError" not in message
    _no_output(tmp_path, f"out.{suffix}")


def test_a_lone_surrogate_round_trips_jsonl_to_jsonl(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(SURROGATE_LINE, encoding="utf-8")
    mask_file(source, tmp_path / "out.jsonl", POLICY)
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert "\\ud83d" in text
    assert json.loads(text) == json.loads(SURROGATE_LINE)


def test_the_jsonl_writer_keeps_a_lone_surrogate_as_its_escape(tmp_path: Path) -> None:
    records = [{"id": 1, "body": "hi \ud83d there é", "n": {"k\udc00": ["\ud800"]}}]
    _stream.write_batches(str(tmp_path / "out.jsonl"), lambda: iter([records]))
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert "\\ud83d" in text and "é" in text
    assert [json.loads(line) for line in text.splitlines()] == records


# -- 4. the CSV hint about nested values -------------------------------------------------------


def test_nested_values_in_csv_output_get_the_hint(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{"id": 1, "u": {"a": SECRET}}])
    with pytest.raises(InputDataError, match=r"column 'u' holds nested values") as info:
        mask_file(source, tmp_path / "out.csv", POLICY)
    assert ".parquet or .jsonl" in str(info.value)
    assert SECRET not in str(info.value)
    _no_output(tmp_path, "out.csv")


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_a_duplicate_csv_header_is_a_clear_error_without_the_nested_hint(
    tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(f"id,id,body\n1,2,{SECRET}\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"names column 'id' more than once") as info:
        mask_file(source, tmp_path / f"out.{suffix}", POLICY)
    assert HINT not in str(info.value)
    assert SECRET not in str(info.value)
    _no_output(tmp_path, f"out.{suffix}")
