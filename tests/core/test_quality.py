"""Data quality with real Great Expectations 1.x: suites in, compact summaries out, no values."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from guardflow.audit import MemoryAuditSink
from guardflow.errors import ConfigurationError, DataQualityError, InputDataError
from guardflow.identity import RunIdentity
from guardflow.quality import QualitySummary, load_suite, validate_data

# Values planted in the data: none may appear in a summary, its text, an error or an audit event.
EMAIL = "planted.person@secret-corp.example"
SALARY_MAX = 987654.25


def _records() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(40):
        rows.append(
            {
                "id": i,
                "email": EMAIL if i % 4 == 0 else f"user{i}@ok.example",
                "amount": None if i % 10 == 0 else float(i),
                "salary": SALARY_MAX if i == 7 else 1000.0 + i,
            }
        )
    return rows


SUITE: dict[str, Any] = {
    "name": "orders",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}},
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "email", "regex": r"@ok\.example$"},
        },
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    ],
}


def _assert_no_planted_values(text: str) -> None:
    assert EMAIL not in text
    assert "secret-corp" not in text
    assert "987654" not in text


def test_failed_expectations_are_counted_in_suite_order() -> None:
    summary = validate_data(pd.DataFrame(_records()), SUITE, audit_sink=MemoryAuditSink())
    assert not summary.success
    assert (summary.evaluated, summary.successful, summary.unsuccessful) == (3, 1, 2)
    assert summary.rows == 40
    assert [(f.type, f.column, f.unexpected_count) for f in summary.failed] == [
        ("expect_column_values_to_not_be_null", "amount", 4),
        ("expect_column_values_to_match_regex", "email", 10),
    ]
    assert summary.failed[1].unexpected_percent == pytest.approx(25.0)


def test_summary_json_and_text_hold_no_sample_values() -> None:
    summary = validate_data(_records(), SUITE, audit_sink=MemoryAuditSink())
    _assert_no_planted_values(summary.to_json())
    _assert_no_planted_values(summary.to_text())
    assert "partial_unexpected" not in summary.to_json()


def test_observed_value_is_kept_for_a_mean_and_dropped_for_a_maximum() -> None:
    suite = {
        "name": "salaries",
        "expectations": [
            {
                "type": "expect_column_mean_to_be_between",
                "kwargs": {"column": "salary", "max_value": 1000},
            },
            {
                "type": "expect_column_max_to_be_between",
                "kwargs": {"column": "salary", "max_value": 5000},
            },
        ],
    }
    frame = pd.DataFrame(_records())
    summary = validate_data(frame, suite, audit_sink=MemoryAuditSink())
    mean, maximum = summary.failed
    assert mean.observed_value == pytest.approx(frame["salary"].mean())
    assert maximum.observed_value is None
    _assert_no_planted_values(summary.to_json())


def _write_inputs(tmp_path: Path) -> dict[str, Any]:
    table = pa.Table.from_pylist(_records())
    pq.write_table(table, tmp_path / "d.parquet")
    pacsv.write_csv(table, tmp_path / "d.csv")
    (tmp_path / "d.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8"
    )
    import polars as pl

    return {
        "records": _records(),
        "arrow": table,
        "polars": pl.from_arrow(table),
        "pandas": pd.DataFrame(_records()),
        "parquet": str(tmp_path / "d.parquet"),
        "csv": str(tmp_path / "d.csv"),
        "jsonl": str(tmp_path / "d.jsonl"),
    }


@pytest.mark.parametrize(
    "kind", ["records", "arrow", "polars", "pandas", "parquet", "csv", "jsonl"]
)
def test_every_input_kind_gives_the_same_counts(tmp_path: Path, kind: str) -> None:
    data = _write_inputs(tmp_path)[kind]
    summary = validate_data(data, SUITE, audit_sink=MemoryAuditSink())
    assert summary.rows == 40
    assert [(f.column, f.unexpected_count) for f in summary.failed] == [
        ("amount", 4),
        ("email", 10),
    ]


def test_the_same_table_gets_the_same_fingerprint_from_memory_or_file(tmp_path: Path) -> None:
    # (polars holds strings as large_string: a different Arrow type, so a different fingerprint)
    inputs = _write_inputs(tmp_path)
    prints = {
        kind: validate_data(inputs[kind], SUITE, audit_sink=MemoryAuditSink()).data_fingerprint
        for kind in ("records", "arrow", "parquet")
    }
    assert len(set(prints.values())) == 1
    assert next(iter(prints.values())).startswith("sha256:")


def _suite_inputs(tmp_path: Path) -> dict[str, Any]:
    import great_expectations as gx

    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    (tmp_path / "orders.json").write_text(json.dumps(SUITE), encoding="utf-8")
    gx_suite = gx.ExpectationSuite(
        name="orders",
        expectations=[
            gx.expectations.ExpectColumnValuesToNotBeNull(column="amount"),
            gx.expectations.ExpectColumnValuesToMatchRegex(column="email", regex=r"@ok\.example$"),
            gx.expectations.ExpectColumnValuesToBeUnique(column="id"),
        ],
    )
    return {
        "dict": SUITE,
        "yaml": str(tmp_path / "orders.yaml"),
        "json": tmp_path / "orders.json",
        "gx": gx_suite,
    }


@pytest.mark.parametrize("kind", ["dict", "yaml", "json", "gx"])
def test_a_suite_from_python_yaml_or_json_gives_the_same_result(tmp_path: Path, kind: str) -> None:
    suite = _suite_inputs(tmp_path)[kind]
    summary = validate_data(_records(), suite, audit_sink=MemoryAuditSink())
    assert summary.suite_name == "orders"
    assert [f.type for f in summary.failed] == [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_match_regex",
    ]


def test_a_gx_suite_passed_in_is_not_bound_or_changed(tmp_path: Path) -> None:
    gx_suite = _suite_inputs(tmp_path)["gx"]
    validate_data(_records(), gx_suite, audit_sink=MemoryAuditSink())
    validate_data(_records(), gx_suite, audit_sink=MemoryAuditSink())
    assert [e.id for e in gx_suite.expectations] == [None, None, None]


def test_a_suite_file_without_name_takes_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "nightly_checks.yml"
    path.write_text(yaml.safe_dump({"expectations": SUITE["expectations"]}), encoding="utf-8")
    assert load_suite(path).name == "nightly_checks"


def test_an_unknown_expectation_type_names_the_expectation_and_a_close_match() -> None:
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
            {"type": "expect_column_values_to_not_be_nul", "kwargs": {"column": "b"}},
        ],
    }
    with pytest.raises(ConfigurationError) as info:
        load_suite(suite)
    message = str(info.value)
    assert "expectation #2 (expect_column_values_to_not_be_nul on column 'b')" in message
    assert "did you mean 'expect_column_values_to_not_be_null'" in message


def test_bad_kwargs_name_the_expectation_and_field_but_not_the_value() -> None:
    suite = {
        "name": "s",
        "expectations": [
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "email", "value_set": EMAIL},
            }
        ],
    }
    with pytest.raises(ConfigurationError) as info:
        load_suite(suite)
    message = str(info.value)
    assert "expectation #1 (expect_column_values_to_be_in_set on column 'email')" in message
    assert "value_set" in message
    _assert_no_planted_values(message)


def test_unknown_keys_in_a_suite_are_refused() -> None:
    bad = {"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwarg": {}}]}
    with pytest.raises(ConfigurationError, match=r"expectation #1 .*unknown keys \['kwarg'\]"):
        load_suite(bad)


def test_a_missing_suite_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_suite(tmp_path / "nope.yaml")


def test_an_unparsable_suite_file_gives_the_position_only(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "s", "expectations": [' + json.dumps(EMAIL), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"not valid json \(line 1") as info:
        load_suite(path)
    _assert_no_planted_values(str(info.value))


def test_an_expectation_on_a_missing_column_fails_with_a_reason() -> None:
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ghost"}}
        ],
    }
    summary = validate_data(_records(), suite, audit_sink=MemoryAuditSink())
    assert not summary.success
    assert summary.failed[0].error == "column 'ghost' not in the data"


def test_a_passing_suite_is_a_success() -> None:
    suite = {
        "name": "ids",
        "expectations": [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}],
    }
    summary = validate_data(_records(), suite, audit_sink=MemoryAuditSink())
    assert summary.success and summary.failed == [] and summary.success_percent == 100.0
    assert summary.raise_for_failure() is summary


def test_raise_for_failure_carries_the_summary_without_values() -> None:
    summary = validate_data(_records(), SUITE, audit_sink=MemoryAuditSink())
    with pytest.raises(DataQualityError) as info:
        summary.raise_for_failure()
    assert info.value.summary == summary
    assert "orders" in str(info.value) and "expect_column_values_to_match_regex(email)" in str(
        info.value
    )
    _assert_no_planted_values(str(info.value))


def test_data_quality_error_survives_pickling() -> None:
    summary = validate_data(_records(), SUITE, audit_sink=MemoryAuditSink())
    with pytest.raises(DataQualityError) as info:
        summary.raise_for_failure()
    copy = pickle.loads(pickle.dumps(info.value))
    assert isinstance(copy, DataQualityError)
    assert copy.summary == summary and str(copy) == str(info.value)


def test_severity_is_reported() -> None:
    suite = {
        "name": "s",
        "expectations": [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "amount"},
                "severity": "warning",
            }
        ],
    }
    summary = validate_data(_records(), suite, audit_sink=MemoryAuditSink())
    assert summary.failed[0].severity == "warning"


def test_one_audit_event_with_fingerprint_and_counts() -> None:
    sink = MemoryAuditSink()
    identity = RunIdentity(orchestrator="test", pipeline="p", run_id="r1", task_id="quality")
    summary = validate_data(_records(), SUITE, identity=identity, audit_sink=sink)
    (event,) = sink.events
    assert event.step_kind == "quality" and event.identity == identity
    assert event.input_fingerprints == {"data": summary.data_fingerprint}
    assert event.counts == {"rows": 40, "expectations": 3, "failed_expectations": 2}
    assert event.attributes == {"suite": "orders", "success": False}
    _assert_no_planted_values(event.model_dump_json())


def test_empty_data_is_an_input_error() -> None:
    with pytest.raises(InputDataError, match="no rows"):
        validate_data(pd.DataFrame({"id": []}), SUITE, audit_sink=MemoryAuditSink())


def test_a_missing_data_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        validate_data(str(tmp_path / "none.parquet"), SUITE, audit_sink=MemoryAuditSink())


def test_a_pandas_column_arrow_cannot_hold_is_still_validated() -> None:
    frame = pd.DataFrame({"mixed": [1, "two", 3.0, None]})
    suite = {
        "name": "m",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "mixed"}}
        ],
    }
    summary = validate_data(frame, suite, audit_sink=MemoryAuditSink())
    assert summary.failed[0].unexpected_count == 1
    assert summary.data_fingerprint is None


def test_the_callers_gx_context_stays_current() -> None:
    import great_expectations as gx
    from great_expectations.data_context.data_context.context_factory import project_manager

    mine = gx.get_context(mode="ephemeral")
    validate_data(_records(), SUITE, audit_sink=MemoryAuditSink())
    assert project_manager.get_current_project() is mine


def test_no_progress_bars_are_printed(capfd: pytest.CaptureFixture[str]) -> None:
    validate_data(_records(), SUITE, audit_sink=MemoryAuditSink())
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out


def test_gx_info_chatter_stays_out_of_an_info_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    validate_data(_records(), SUITE, audit_sink=MemoryAuditSink())
    assert [r.getMessage() for r in caplog.records if r.name.startswith("great_expectations")] == []


def test_summary_round_trips_through_json() -> None:
    summary = validate_data(_records(), SUITE, audit_sink=MemoryAuditSink())
    assert QualitySummary.from_json(summary.to_json()) == summary
    assert summary.to_dict()["failed"][0]["type"] == "expect_column_values_to_not_be_null"


def test_importing_guardflow_quality_does_not_import_great_expectations() -> None:
    code = (
        "import sys, guardflow.quality, guardflow.tracking, guardflow.cli; "
        "print([m for m in ('great_expectations', 'mlflow', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
