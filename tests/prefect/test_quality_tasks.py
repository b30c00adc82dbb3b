"""The validate_data / avalidate_data tasks in real flows, on a real Prefect server.

The suite expects the reference workflow's sample: unique, non-null keys and features within
[-10, 10]. The invalid dataset is that sample with one duplicated key and two out-of-range values.
"""

from __future__ import annotations

import asyncio
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect.states import State

from guardflow.errors import ConfigurationError, DataQualityError, InputDataError
from guardflow.quality import QualitySummary
from guardflow.samples import FEATURES, KEY_COLUMN, write_sample_csv
from prefect_guardflow.quality import avalidate_data, validate_data

SUITE = {
    "name": "sample",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": KEY_COLUMN}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": KEY_COLUMN}},
        *(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": f, "min_value": -10, "max_value": 10},
            }
            for f in FEATURES
        ),
    ],
}
# Planted in the invalid dataset; they must never reach logs or artifacts.
OUT_OF_RANGE = ("4242.4242", "-9191.9191")
DUPLICATED_KEY = "row-00007"


@dataclass(frozen=True)
class Data:
    valid: str
    invalid: str


@pytest.fixture
def data(tmp_path: Path) -> Data:
    valid = write_sample_csv(tmp_path / "valid.csv")
    with valid.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows[3]["f1"], rows[4]["f2"] = OUT_OF_RANGE
    rows[8][KEY_COLUMN] = DUPLICATED_KEY
    invalid = tmp_path / "invalid.csv"
    with invalid.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Data(valid=str(valid), invalid=str(invalid))


# -- reading a flow run back from the Prefect API ----------------------------------------------


def _flow_run_id(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def _runs_filter(flow_run_id: UUID) -> FlowRunFilter:
    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))


def _task_runs(flow_run_id: UUID) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=_runs_filter(flow_run_id))
    return {r.name.rsplit("-", 1)[0]: r for r in runs}


def _artifacts(flow_run_id: UUID) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=_runs_filter(flow_run_id))
    return {a.type: a for a in found}


def _logs(flow_run_id: UUID) -> str:
    APILogHandler().flush()  # logs travel to the API in the background: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return "\n".join(log.message for log in logs)


# -- results and artifacts -----------------------------------------------------------------------


def test_valid_data_returns_a_successful_summary(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.valid, SUITE)

    summary = check()

    assert isinstance(summary, QualitySummary)
    assert (summary.suite_name, summary.success) == ("sample", True)
    assert (summary.evaluated, summary.successful, summary.rows) == (6, 6, 250)


def test_summary_and_failed_expectation_table_artifacts_are_keyed(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.invalid, SUITE, on_failure="warn", artifact_key="orders-quality")

    state = check(return_state=True)

    artifacts = _artifacts(_flow_run_id(state))
    markdown, table = artifacts["markdown"], artifacts["table"]
    assert markdown.key == "orders-quality"
    assert "### Data quality: suite 'sample' failed" in markdown.data
    assert "| Expectations passed | 3 of 6 |" in markdown.data
    assert "| Columns with failures | row_id, f1, f2 |" in markdown.data
    assert table.key == "orders-quality-columns"
    rows = json.loads(table.data)
    assert [(r["expectation"], r["columns"], r["unexpected_count"]) for r in rows] == [
        ("expect_column_values_to_be_unique", "row_id", 2),
        ("expect_column_values_to_be_between", "f1", 1),
        ("expect_column_values_to_be_between", "f2", 1),
    ]


def test_a_passing_suite_leaves_an_empty_failure_table(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.valid, SUITE)

    state = check(return_state=True)

    artifacts = _artifacts(_flow_run_id(state))
    assert json.loads(artifacts["table"].data) == []
    assert "Every expectation passed" in artifacts["markdown"].data


def test_logs_and_artifacts_hold_no_data_values(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.invalid, SUITE, on_failure="warn")

    state = check(return_state=True)

    flow_run_id = _flow_run_id(state)
    seen = _logs(flow_run_id) + repr([a.data for a in _artifacts(flow_run_id).values()])
    assert "expect_column_values_to_be_between(f1)" in seen
    for value in (*OUT_OF_RANGE, DUPLICATED_KEY):
        assert value not in seen


def test_suite_can_be_a_yaml_file(data: Data, tmp_path: Path) -> None:
    suite_file = tmp_path / "sample.yaml"
    suite_file.write_text(yaml.safe_dump(SUITE))

    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.invalid, str(suite_file), on_failure="warn")

    summary = check()

    assert (summary.suite_name, summary.unsuccessful) == ("sample", 3)


def test_async_task_returns_the_same_summary(data: Data) -> None:
    @flow(persist_result=False)
    async def check() -> QualitySummary:
        return await avalidate_data(data.invalid, SUITE, on_failure="warn")

    @flow(persist_result=False)
    def check_sync() -> QualitySummary:
        return validate_data(data.invalid, SUITE, on_failure="warn")

    summary = asyncio.run(check())

    reference = check_sync()
    assert summary.model_dump(exclude={"data_fingerprint"}) == reference.model_dump(
        exclude={"data_fingerprint"}
    )


# -- on_failure ----------------------------------------------------------------------------------


def test_fail_policy_fails_the_task_without_retry_naming_the_failures(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.invalid, SUITE)

    state = check(return_state=True)

    assert state.is_failed()
    with pytest.raises(DataQualityError, match=r"expect_column_values_to_be_unique\(row_id\)"):
        state.result()
    task_run = _task_runs(_flow_run_id(state))["validate_data"]
    assert (task_run.state.is_failed(), task_run.run_count) == (True, 1)


def test_warn_policy_logs_a_warning_and_returns_the_summary(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.invalid, SUITE, on_failure="warn")

    state = check(return_state=True)

    assert state.is_completed()
    assert state.result().success is False
    assert "failed 3 of 6 expectations" in _logs(_flow_run_id(state))


def test_skip_policy_returns_the_summary_and_a_flow_branches_on_it(data: Data) -> None:
    @task(persist_result=False)
    def quarantine(columns: list[str]) -> str:
        return f"quarantined on {', '.join(columns)}"

    @task(persist_result=False)
    def load() -> str:
        return "loaded"

    @flow(persist_result=False)
    def pipeline(path: str) -> str:
        summary = validate_data(path, SUITE, on_failure="skip")
        if not summary.success:
            return quarantine(summary.failed_columns)
        return load()

    invalid = pipeline(data.invalid, return_state=True)
    valid = pipeline(data.valid, return_state=True)

    assert invalid.result() == "quarantined on row_id, f1, f2"
    assert set(_task_runs(_flow_run_id(invalid))) == {"validate_data", "quarantine"}
    assert "downstream steps should skip" in _logs(_flow_run_id(invalid))
    assert valid.result() == "loaded"


def test_missing_data_fails_whatever_the_policy(tmp_path: Path) -> None:
    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(str(tmp_path / "missing.csv"), SUITE, on_failure="skip")

    state = check(return_state=True)

    with pytest.raises(InputDataError):
        state.result()


def test_invalid_suite_is_a_configuration_error(data: Data) -> None:
    suite = {"name": "typo", "expectations": [{"type": "expect_column_to_be_nice", "kwargs": {}}]}

    @flow(persist_result=False)
    def check() -> QualitySummary:
        return validate_data(data.valid, suite, on_failure="warn")

    with pytest.raises(ConfigurationError, match="unknown expectation #1"):
        check()
