"""Every input kind scores the same: records, pandas, polars, Arrow, Parquet, CSV and JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from guardflow.errors import InputDataError
from guardflow.inference import BatchPolicy, EndpointConfig, InferenceConfig, run_inference
from guardflow.testing.fault_server import FaultServer

RECORDS = [{"id": i, "x": i * 0.5, "y": i} for i in range(7)]
EXPECTED = [i * 0.5 + i for i in range(7)]


def as_parquet(tmp: Path) -> str:
    pq.write_table(pa.Table.from_pylist(RECORDS), tmp / "in.parquet")
    return str(tmp / "in.parquet")


def as_csv(tmp: Path) -> str:
    pacsv.write_csv(pa.Table.from_pylist(RECORDS), tmp / "in.csv")
    return str(tmp / "in.csv")


def as_jsonl(tmp: Path) -> str:
    (tmp / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return str(tmp / "in.jsonl")


def as_pandas(tmp: Path) -> Any:
    import pandas as pd

    return pd.DataFrame(RECORDS)


def as_polars(tmp: Path) -> Any:
    import polars as pl

    return pl.DataFrame(RECORDS)


SOURCES: dict[str, Callable[[Path], Any]] = {
    "records": lambda tmp: RECORDS,
    "pandas": as_pandas,
    "polars": as_polars,
    "arrow": lambda tmp: pa.Table.from_pylist(RECORDS),
    "parquet": as_parquet,
    "csv": as_csv,
    "jsonl": as_jsonl,
}


def config(server: FaultServer) -> InferenceConfig:
    return InferenceConfig(
        endpoint=EndpointConfig(url=server.url),
        key_column="id",
        batching=BatchPolicy(batch_size=3, concurrency=2),
    )


@pytest.mark.parametrize("kind", list(SOURCES))
def test_each_input_kind_is_scored_row_for_row(
    kind: str, fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    summary = run_inference(SOURCES[kind](tmp_path), out, config(fault_server))
    written = pq.read_table(out).to_pylist()
    assert [r["id"] for r in written] == list(range(7))
    assert [r["prediction"] for r in written] == EXPECTED
    assert summary.succeeded == 7


def test_a_missing_input_file_is_a_clear_input_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        run_inference(str(tmp_path / "nope.parquet"), tmp_path / "o.parquet", config(fault_server))
    assert fault_server.requests == []


def test_an_empty_input_is_a_clear_input_error(fault_server: FaultServer, tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputDataError):
        run_inference(str(tmp_path / "empty.jsonl"), tmp_path / "o.parquet", config(fault_server))
    assert fault_server.requests == []


def test_an_input_that_already_has_a_prediction_column_is_refused(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    rows = [{"id": 1, "x": 1.0, "prediction": 0.0}]
    with pytest.raises(InputDataError, match="prediction_column"):
        run_inference(rows, tmp_path / "o.parquet", config(fault_server))
