"""check_drift's inputs: every input type, nulls, schema and type mismatches, the audit event.

Every edge case either gives a defined result or a DriftInputError / ConfigurationError that names
columns, never values (each error test plants a value and checks it is absent from the message).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.drift import DriftConfig, DriftReport, check_drift
from guardflow.errors import ConfigurationError, DriftInputError, InputDataError
from guardflow.fingerprint import fingerprint_table

SECRETISH = "planted-value-7Q"


def run(reference: Any, current: Any, **kwargs: Any) -> DriftReport:
    kwargs.setdefault("audit_sink", MemoryAuditSink())
    return check_drift(reference, current, **kwargs)


def tables() -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(7)
    reference = pa.table(
        {
            "amount": rng.gamma(2.0, 10.0, 1500),
            "count": rng.integers(0, 40, 1500),
            "country": rng.choice(["fr", "de", "it"], 1500),
        }
    )
    current = pa.table(
        {
            "amount": rng.gamma(2.0, 12.0, 800),
            "count": rng.integers(0, 40, 800),
            "country": rng.choice(["fr", "de", "es"], 800),
        }
    )
    return reference, current


def scores(report: DriftReport) -> list[tuple[str, str, float]]:
    return [(c.column, c.method, c.score) for c in report.columns]


# --- input types ----------------------------------------------------------------------------------


def _as(kind: str, table: pa.Table, tmp_path: Path, name: str) -> Any:
    if kind == "arrow":
        return table
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        return pl.from_arrow(table)
    if kind == "records":
        return table.to_pylist()
    if kind == "parquet":
        pq.write_table(table, tmp_path / f"{name}.parquet")
        return str(tmp_path / f"{name}.parquet")
    if kind == "csv":
        pacsv.write_csv(table, tmp_path / f"{name}.csv")
        return tmp_path / f"{name}.csv"
    if kind == "jsonl":
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))
        return str(path)
    assert kind == "memory-uri"
    import fsspec

    uri = f"memory://drift-inputs/{tmp_path.name}/{name}.parquet"
    with fsspec.open(uri, "wb") as fh:
        pq.write_table(table, fh)
    return uri


@pytest.mark.parametrize(
    "kind", ["arrow", "pandas", "polars", "records", "parquet", "csv", "jsonl", "memory-uri"]
)
def test_every_input_type_gives_the_same_scores(kind: str, tmp_path: Path) -> None:
    reference, current = tables()
    expected = run(reference, current)

    report = run(
        _as(kind, reference, tmp_path, "reference"), _as(kind, current, tmp_path, "current")
    )

    assert scores(report) == scores(expected)
    assert report.reference_rows == 1500 and report.current_rows == 800


def test_the_report_carries_fingerprints_of_both_inputs() -> None:
    reference, current = tables()

    report = run(reference, current)

    assert report.reference_fingerprint == fingerprint_table(reference)
    assert report.current_fingerprint == fingerprint_table(current)


# --- nulls, NaN, infinities, constants, unseen categories -----------------------------------------


def test_nulls_nan_and_infinities_are_dropped_and_counted() -> None:
    values = np.arange(300, dtype=float)
    dirty = pa.array(
        [*np.concatenate((values, [np.nan, np.inf, -np.inf])).tolist(), None], pa.float64()
    )
    clean = pa.array(values)

    report = run(pa.table({"x": dirty}), pa.table({"x": clean}))

    col = report.columns[0]
    assert (col.reference_nulls, col.current_nulls) == (4, 0)
    assert col.score == 1.0  # identical once dropped
    assert report.reference_rows == 304


def test_string_nulls_are_dropped_and_counted() -> None:
    reference = pa.table({"c": ["a", "b", None] * 100})
    current = pa.table({"c": ["a", "b", "b"] * 100})

    col = run(reference, current).columns[0]

    assert (col.reference_nulls, col.current_nulls) == (100, 0)
    assert col.method == "z"


def test_unseen_categories_in_the_current_data_drift() -> None:
    reference = pa.table({"c": ["a", "b", "c"] * 100})
    current = pa.table({"c": ["a", "b", "c", "d"] * 50})

    col = run(reference, current).columns[0]

    assert (col.method, col.score, col.drifted) == ("chisquare", 0.0, True)


def test_equal_constant_columns_do_not_drift() -> None:
    report = run(
        pa.table({"x": [3.0] * 2000, "c": ["k"] * 2000}),
        pa.table({"x": [3.0] * 10, "c": ["k"] * 10}),
    )

    assert [(c.method, c.score, c.drifted) for c in report.columns] == [
        ("jensenshannon", 0.0, False),
        ("jensenshannon", 0.0, False),
    ]


def test_a_constant_reference_against_a_moved_constant_drifts() -> None:
    col = run(pa.table({"x": [3.0] * 200}), pa.table({"x": [4.0] * 200})).columns[0]

    assert (col.method, col.drifted) == ("z", True)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["reference", "current"])
def test_an_all_null_column_is_a_drift_input_error_naming_it(side: str) -> None:
    full = pa.table({"x": [1.0, 2.0] * 50, "keep": [SECRETISH, "b"] * 50})
    empty = pa.table({"x": pa.array([None] * 100, pa.float64()), "keep": [SECRETISH, "b"] * 50})
    reference, current = (empty, full) if side == "reference" else (full, empty)

    with pytest.raises(DriftInputError, match=rf"'x' has no values in the {side}") as info:
        run(reference, current)

    assert info.value.columns == ["x"]
    assert SECRETISH not in str(info.value)


def test_a_column_of_only_nan_and_inf_is_all_null() -> None:
    with pytest.raises(DriftInputError, match=r"'x' has no values in the current"):
        run(pa.table({"x": [1.0, 2.0]}), pa.table({"x": [np.nan, np.inf]}))


def test_a_null_typed_column_from_records_is_all_null() -> None:
    with pytest.raises(DriftInputError, match=r"'x' has no values in the reference"):
        run([{"x": None}, {"x": None}], [{"x": 1.0}, {"x": 2.0}])


@pytest.mark.parametrize("side", ["reference", "current"])
def test_an_empty_frame_is_a_drift_input_error(side: str) -> None:
    full = pd.DataFrame({"x": [1.0, 2.0]})
    empty = pd.DataFrame({"x": pd.Series([], dtype=float)})
    reference, current = (empty, full) if side == "reference" else (full, empty)

    with pytest.raises(DriftInputError, match=rf"^{side} data: .*no rows"):
        run(reference, current)


def test_a_missing_file_is_a_drift_input_error(tmp_path: Path) -> None:
    with pytest.raises(DriftInputError, match=r"current data: .*does not exist"):
        run([{"x": 1.0}], str(tmp_path / "nope.parquet"))


def test_drift_input_errors_are_input_data_errors() -> None:
    assert issubclass(DriftInputError, InputDataError)


def test_without_config_columns_only_common_columns_are_compared() -> None:
    reference = pa.table({"a": [1.0, 2.0] * 50, "only_ref": [1] * 100})
    current = pa.table({"only_cur": ["x"] * 100, "a": [1.0, 2.0] * 50})

    report = run(reference, current)

    assert [c.column for c in report.columns] == ["a"]
    assert report.skipped_columns == ["only_ref", "only_cur"]


def test_named_columns_must_exist_on_both_sides() -> None:
    reference = pa.table({"a": [1.0, 2.0], "b": [1.0, 2.0]})
    current = pa.table({"a": [1.0, 2.0], "c": [SECRETISH, "x"]})

    with pytest.raises(DriftInputError, match=r"missing from the current data: \['b'\]") as info:
        run(reference, current, config=DriftConfig(columns=["a", "b"]))

    assert info.value.columns == ["b"]
    assert SECRETISH not in str(info.value)


def test_no_common_column_is_a_drift_input_error() -> None:
    with pytest.raises(DriftInputError, match=r"no testable column in common"):
        run(pa.table({"a": [1.0]}), pa.table({"b": [1.0]}))


def test_numbers_in_the_reference_and_strings_in_the_current_is_an_error() -> None:
    with pytest.raises(
        DriftInputError, match=r"'x' holds numeric values in the reference but string"
    ) as info:
        run(pa.table({"x": [1.0, 2.0]}), pa.table({"x": [SECRETISH, "2"]}))

    assert SECRETISH not in str(info.value)


def test_forcing_strings_numerical_is_an_error() -> None:
    with pytest.raises(DriftInputError, match=r"'x' is listed in config.numerical"):
        run(
            pa.table({"x": ["1", "2"]}),
            pa.table({"x": ["1", "2"]}),
            config=DriftConfig(numerical=["x"]),
        )


def test_overrides_for_columns_that_are_not_compared_are_an_error() -> None:
    with pytest.raises(DriftInputError, match=r"not compared: \['typo'\]"):
        run(
            pa.table({"x": [1.0]}), pa.table({"x": [1.0]}), config=DriftConfig(categorical=["typo"])
        )


def test_untestable_types_are_skipped_unless_named() -> None:
    when = [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)] * 50
    reference = pa.table({"when": when, "x": [1.0, 2.0] * 50})

    assert run(reference, reference).skipped_columns == ["when"]
    with pytest.raises(DriftInputError, match=r"types drift cannot test.*\['when'\]"):
        run(reference, reference, config=DriftConfig(columns=["when", "x"]))


def test_duplicated_column_names_are_an_error() -> None:
    table = pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0])], names=["x", "x"])

    with pytest.raises(DriftInputError, match=r"duplicated column names: \['x'\]"):
        run(table, table)


def test_an_unknown_engine_or_html_without_evidently_is_a_configuration_error() -> None:
    table = pa.table({"x": [1.0]})

    with pytest.raises(ConfigurationError, match="unknown drift engine"):
        run(table, table, engine="spark")
    with pytest.raises(ConfigurationError, match="html_path needs engine='evidently'"):
        run(table, table, html_path="report.html")


def test_a_profile_cannot_be_the_current_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="current data cannot be a profile"):
        run([{"x": 1.0}], str(tmp_path / "x.gfprofile"))


# --- audit ----------------------------------------------------------------------------------------


def test_one_drift_audit_event_with_counts_and_fingerprints_never_values() -> None:
    sink = MemoryAuditSink()
    reference = pa.table({"c": [SECRETISH, "b"] * 100, "x": np.arange(200.0)})
    current = pa.table({"c": ["b", "b"] * 100, "x": np.arange(200.0)})

    report = check_drift(reference, current, audit_sink=sink)

    (event,) = sink.events
    assert event.step_kind == "drift" and event.outcome == "success"
    assert event.counts == {
        "reference_rows": 200,
        "current_rows": 200,
        "columns": 2,
        "drifted_columns": 1,
        "skipped_columns": 0,
    }
    assert event.input_fingerprints == {
        "reference": report.reference_fingerprint,
        "current": report.current_fingerprint,
    }
    assert event.attributes["dataset_drift"] is True
    assert SECRETISH not in event.model_dump_json()
    assert SECRETISH not in report.to_json()


def test_a_failed_check_emits_a_failed_event() -> None:
    sink = MemoryAuditSink()

    with pytest.raises(DriftInputError):
        check_drift(pa.table({"a": [1.0]}), pa.table({"b": [1.0]}), audit_sink=sink)

    assert [(e.step_kind, e.outcome, e.error_type) for e in sink.events] == [
        ("drift", "failed", "DriftInputError")
    ]
