"""Reading inputs of every kind, writing outputs atomically, and fingerprinting them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from guardflow.errors import ConfigurationError, InputDataError, OutputWriteError
from guardflow.fingerprint import fingerprint_bytes, fingerprint_table, fingerprint_uri
from guardflow.tables import read_table, table_format, write_bytes, write_table

RECORDS = [{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": "b", "score": None}]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.parquet", "parquet"),
        ("s3://b/k/a.csv", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.json", "jsonl"),
    ],
)
def test_the_format_comes_from_the_suffix(name: str, fmt: str) -> None:
    assert table_format(name) == fmt


def test_an_unknown_suffix_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"\.parquet, \.csv or \.jsonl"):
        table_format("scores.xlsx")


def test_records_become_a_table() -> None:
    assert read_table(RECORDS).to_pylist() == RECORDS


def test_pandas_and_polars_frames_become_the_same_table() -> None:
    import pandas as pd
    import polars as pl

    from_pandas = read_table(pd.DataFrame(RECORDS)).to_pylist()
    from_polars = read_table(pl.DataFrame(RECORDS)).to_pylist()
    assert from_pandas[0] == from_polars[0] == RECORDS[0]
    assert pd.isna(from_pandas[1]["score"]) and from_polars[1]["score"] is None


def test_pandas_metadata_is_dropped() -> None:
    import pandas as pd

    assert read_table(pd.DataFrame(RECORDS)).schema.metadata is None


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_a_written_file_reads_back_unchanged(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    write_table(pa.Table.from_pylist(RECORDS), path)
    assert read_table(str(path)).to_pylist() == RECORDS


def test_jsonl_output_is_one_json_object_per_line(tmp_path: Path) -> None:
    write_table(pa.Table.from_pylist(RECORDS), tmp_path / "t.jsonl")
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == RECORDS


def test_a_uri_with_a_scheme_goes_through_fsspec() -> None:
    uri = "memory://guardflow-tables-test/t.parquet"
    try:
        write_table(pa.Table.from_pylist(RECORDS), uri)
        assert read_table(uri).to_pylist() == RECORDS
    finally:
        fsspec.filesystem("memory").rm("/guardflow-tables-test", recursive=True)


def test_parent_folders_are_created(tmp_path: Path) -> None:
    write_table(pa.Table.from_pylist(RECORDS), tmp_path / "a" / "b" / "t.parquet")
    assert (tmp_path / "a" / "b" / "t.parquet").is_file()


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_table(pa.Table.from_pylist(RECORDS), path)
    before = path.read_bytes()
    nested = pa.Table.from_pylist([{"id": 1, "embedding": [0.1, 0.2]}])
    with pytest.raises(OutputWriteError, match="nested values"):
        write_table(nested, path)  # CSV cannot hold a list column
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_a_failed_write_to_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    nested = pa.Table.from_pylist([{"embedding": [0.1]}])
    with pytest.raises(OutputWriteError):
        write_table(nested, tmp_path / "new.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_upload_leaves_no_object() -> None:
    uri = "memory://guardflow-tables-fail/t.csv"
    with pytest.raises(OutputWriteError):
        write_table(pa.Table.from_pylist([{"embedding": [0.1]}]), uri)
    assert not fsspec.filesystem("memory").exists("/guardflow-tables-fail/t.csv")


def test_an_unwritable_destination_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputWriteError, match="nothing was left there"):
        write_bytes(b"x", tmp_path / "file" / "child.json")


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        read_table(str(tmp_path / "missing.parquet"))


def test_a_missing_uri_is_an_input_error() -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        read_table("memory://guardflow-nowhere/missing.parquet")


def test_no_records_is_an_input_error() -> None:
    with pytest.raises(InputDataError, match="has no rows"):
        read_table([])


def test_a_header_only_csv_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("id,score\n")
    with pytest.raises(InputDataError, match="has no rows"):
        read_table(str(tmp_path / "h.csv"))


def test_a_corrupt_parquet_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(InputDataError, match="could not read parquet input"):
        read_table(str(tmp_path / "bad.parquet"))


def test_mixed_value_types_are_an_input_error_that_does_not_quote_the_value() -> None:
    with pytest.raises(InputDataError) as err:
        read_table([{"v": 1}, {"v": "SECRET-VALUE"}])
    assert "SECRET-VALUE" not in str(err.value)
    assert err.value.__cause__ is None


def test_an_unsupported_source_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot read an input of type int"):
        read_table(42)


def test_fingerprints_do_not_depend_on_chunking() -> None:
    table = pa.Table.from_pylist(RECORDS * 50)
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=7))
    assert fingerprint_table(table) == fingerprint_table(rechunked)


def test_fingerprints_change_with_any_value() -> None:
    changed = [dict(RECORDS[0]), dict(RECORDS[1], name="c")]
    fp = fingerprint_table(pa.Table.from_pylist(RECORDS))
    assert fp != fingerprint_table(pa.Table.from_pylist(changed))
    assert fp.startswith("sha256:") and len(fp) == 7 + 64


def test_a_file_fingerprint_is_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(RECORDS), tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    assert fingerprint_uri(tmp_path / "t.parquet") == "sha256:" + hashlib.sha256(data).hexdigest()
    assert fingerprint_uri(tmp_path / "t.parquet") == fingerprint_bytes(data)


def test_fingerprinting_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError):
        fingerprint_uri(tmp_path / "missing.parquet")


def test_uris_in_messages_lose_credentials_and_query_strings() -> None:
    from guardflow.tables import safe_uri

    assert safe_uri("s3://bucket/k/x.parquet?X-Amz-Signature=sig-9f") == "s3://bucket/k/x.parquet"
    assert safe_uri("https://user:pw-7c@host:9000/x.jsonl") == "https://host:9000/x.jsonl"
    assert safe_uri("/data/x.parquet") == "/data/x.parquet"


def test_a_missing_remote_input_is_named_without_its_signature() -> None:
    from guardflow.errors import InputDataError
    from guardflow.tables import read_table

    with pytest.raises(InputDataError) as exc:
        read_table("memory://nowhere/x.parquet?X-Amz-Signature=sig-3e1d")
    assert "memory://nowhere/x.parquet" in str(exc.value)
    assert "sig-3e1d" not in str(exc.value)
