"""Masked CSV comes back as it went in: only masked cells change, quoted only where needed."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from guardflow import tables
from guardflow.pii import PIIPolicy, _stream, mask_file
from guardflow.tables import write_table

EMAIL = "jane.q.doe@example.org"

# Quoted only where the dialect needs it, LF line ends: the form a faithful writer gives back.
SOURCE = (
    "id,count,price,label,notes\n"
    "00042,42,1.50,plain,hello there\n"
    f'00007,-3,2.0,"a, b",write to {EMAIL} today\n'
    '10000,0,0.10,"say ""hi""",\n'
    '00001,7,3.250,"line one\nline two",no pii here\n'
    '00000,1,1e3,,"commas, in notes"\n'
    "00100,+5,-0.0,\u00e9t\u00e9,\n"
)
EXPECTED = SOURCE.replace(EMAIL, "<EMAIL_ADDRESS>")

POLICY_YAML = "free_text_columns: [notes]\ndefault_action: replace\n"
POLICY = PIIPolicy.model_validate({"free_text_columns": ["notes"], "default_action": "replace"})


def _fields(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes(SOURCE.encode("utf-8"))
    return path


def test_untouched_fields_are_identical_and_the_email_is_gone(source: Path, tmp_path: Path) -> None:
    mask_file(source, tmp_path / "out.csv", POLICY)

    before = _fields(SOURCE)
    after = _fields((tmp_path / "out.csv").read_text("utf-8"))
    assert len(after) == len(before)
    notes = before[0].index("notes")
    for row_in, row_out in zip(before, after, strict=True):
        assert len(row_out) == len(row_in)
        assert [v for i, v in enumerate(row_out) if i != notes] == [
            v for i, v in enumerate(row_in) if i != notes
        ]
    assert [row[notes] for row in after][2] == "write to <EMAIL_ADDRESS> today"
    assert EMAIL not in (tmp_path / "out.csv").read_text("utf-8")


def test_output_is_byte_for_byte_the_input_but_for_the_masked_cell(
    source: Path, tmp_path: Path
) -> None:
    mask_file(source, tmp_path / "out.csv", POLICY)

    assert (tmp_path / "out.csv").read_bytes() == EXPECTED.encode("utf-8")


def test_the_cli_writes_the_same_file(source: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_YAML, "utf-8")
    mask_file(source, tmp_path / "api.csv", POLICY)

    out = subprocess.run(
        [sys.executable, "-m", "guardflow", "pii", "mask", str(source), str(tmp_path / "cli.csv"),
         "--policy", str(policy)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "api.csv").read_bytes()
    assert (tmp_path / "cli.csv").read_bytes() == EXPECTED.encode("utf-8")
    assert EMAIL not in out.stdout + out.stderr


def test_empty_and_quoted_empty_fields_read_back_as_the_same_empty_string(tmp_path: Path) -> None:
    # The reader reads both `,,` and `,"",` as "" (never null), so one form is written: empty.
    source = tmp_path / "in.csv"
    source.write_bytes(b'a,b,c\nx,,y\nx,"",y\n,,\n')
    mask_file(source, tmp_path / "out.csv", POLICY)

    assert (tmp_path / "out.csv").read_bytes() == b"a,b,c\nx,,y\nx,,y\n,,\n"
    assert _read(source) == _read(tmp_path / "out.csv")


def test_one_column_rows_that_are_empty_are_kept(tmp_path: Path) -> None:
    # An empty line is no row to a CSV reader: in a one-column file the empty field is quoted.
    source = tmp_path / "in.csv"
    source.write_bytes(b'notes\nfirst\n""\nlast\n')
    mask_file(source, tmp_path / "out.csv", POLICY)

    assert (tmp_path / "out.csv").read_bytes() == b'notes\nfirst\n""\nlast\n'
    assert _read(tmp_path / "out.csv") == [{"notes": "first"}, {"notes": ""}, {"notes": "last"}]


def test_quoted_line_breaks_across_read_blocks_keep_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_stream, "_CSV_BLOCK", 1 << 10)
    body = "".join(f'{i:05d},"first line\nsecond, line {i}"\n' for i in range(500))
    source = tmp_path / "in.csv"
    source.write_bytes(f"id,notes\n{body}".encode())

    report = mask_file(source, tmp_path / "out.csv", POLICY)

    assert report.batches > 1
    assert (tmp_path / "out.csv").read_bytes() == source.read_bytes()


def test_write_table_quotes_only_fields_that_need_it(tmp_path: Path) -> None:
    table = pa.table(
        {
            "n": [42, -3, None],
            "x": [1.5, 2.0, 0.25],
            "s": ["007", 'a, "b"', None],
            "t": ["plain", "", "line\nbreak"],
        }
    )
    write_table(table, tmp_path / "out.csv")

    assert (tmp_path / "out.csv").read_bytes() == (
        b'n,x,s,t\n42,1.5,007,plain\n-3,2,"a, ""b""",\n,0.25,,"line\nbreak"\n'
    )


def test_write_table_writes_every_slice_of_a_chunked_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "_CSV_ROWS", 3)
    values = [f"{i:03d}" if i % 4 else f'{i}, q"uoted' for i in range(10)]
    table = pa.concat_tables([pa.table({"v": values[:7]}), pa.table({"v": values[7:]})])
    write_table(table.slice(1), tmp_path / "out.csv")

    assert _fields((tmp_path / "out.csv").read_text("utf-8")) == [["v"]] + [[v] for v in values[1:]]


def test_write_table_renders_values_as_pyarrow_does(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 123000), None], pa.timestamp("us")),
            "day": [dt.date(2024, 1, 2), dt.date(1, 1, 1)],
            "amount": [decimal.Decimal("1.50"), decimal.Decimal("-0.01")],
            "flag": [True, None],
            "ratio": pa.array([1.1, 3.0], pa.float32()),
        }
    )
    write_table(table, tmp_path / "out.csv")

    reference = io.BytesIO()
    pacsv.write_csv(table, reference)
    # pyarrow's own writer differs only by quoting every string (here: the header names).
    assert (tmp_path / "out.csv").read_bytes() == reference.getvalue().replace(b'"', b"")


def _read(path: Path) -> list[dict[str, str | None]]:
    names = pacsv.read_csv(path).column_names
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    rows: list[dict[str, str | None]] = pacsv.read_csv(path, convert_options=convert).to_pylist()
    return rows
