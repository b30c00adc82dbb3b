"""The check_drift / acheck_drift tasks in real flows, on a real Prefect server.

The data are the reference workflow's sample datasets: a reference, a sample from the same
distribution and a drifted sample (three of the four features moved, every value still valid).
"""

from __future__ import annotations

import asyncio
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
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

from guardflow.drift import DriftReport
from guardflow.errors import ConfigurationError, DriftDetectedError, DriftInputError
from guardflow.samples import DRIFTED_FEATURES, FEATURES, write_reference_csv, write_sample_csv
from prefect_guardflow.drift import acheck_drift, check_drift

if TYPE_CHECKING:
    from conftest import PrefectServer

# The key column is an identifier: every value is new, so it is left out of the comparison.
CONFIG = {"columns": list(FEATURES)}


@dataclass(frozen=True)
class Data:
    reference: str
    current: str
    drifted: str


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return Data(
        reference=str(write_reference_csv(tmp_path / "reference.csv")),
        current=str(write_sample_csv(tmp_path / "current.csv")),
        drifted=str(write_sample_csv(tmp_path / "drifted.csv", drift=True)),
    )


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


def _values(path: str) -> list[str]:
    """Some of the file's cell values, to check they never reach logs or artifacts."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:5]
    return [r[f] for r in rows for f in FEATURES]


# -- results and artifacts -----------------------------------------------------------------------


def test_undrifted_data_returns_a_report_without_drift(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(data.reference, data.current, config=CONFIG)

    report = check()

    assert isinstance(report, DriftReport)
    assert (report.dataset_drift, report.drifted_columns) == (False, [])
    assert [c.method for c in report.columns] == ["ks"] * 4
    assert (report.reference_rows, report.current_rows) == (1000, 250)


def test_summary_and_per_column_table_artifacts_are_keyed(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(data.reference, data.drifted, config=CONFIG, on_failure="warn")

    state = check(return_state=True)

    artifacts = _artifacts(_flow_run_id(state))
    markdown, table = artifacts["markdown"], artifacts["table"]
    assert markdown.key == "guardflow-drift"
    assert "### Data drift detected" in markdown.data
    assert "| Drifted columns | 3 of 4 |" in markdown.data
    assert "| Columns that drifted | f0, f1, f2 |" in markdown.data
    assert "on_failure='warn'" in markdown.data
    assert table.key == "guardflow-drift-columns"
    rows = json.loads(table.data)
    assert [(r["column"], r["method"], r["drifted"]) for r in rows] == [
        ("f0", "ks", True),
        ("f1", "ks", True),
        ("f2", "ks", True),
        ("f3", "ks", False),
    ]


def test_logs_and_artifacts_hold_no_data_values(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(data.reference, data.drifted, config=CONFIG, on_failure="warn")

    state = check(return_state=True)

    flow_run_id = _flow_run_id(state)
    seen = _logs(flow_run_id) + repr([a.data for a in _artifacts(flow_run_id).values()])
    assert "f0, f1, f2" in seen
    for value in _values(data.drifted) + _values(data.reference):
        assert value not in seen


def test_results_are_not_persisted(prefect_server: PrefectServer, data: Data) -> None:
    @flow
    def check() -> None:
        check_drift(data.reference, data.current, config=CONFIG)

    # other tests' flows may leave their own results in the shared storage: compare before/after
    before = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}
    state = check(return_state=True)

    assert state.is_completed()
    assert _task_runs(_flow_run_id(state))["check_drift"].state.data is None
    stored = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}
    assert stored - before == set()


def test_config_can_be_a_yaml_file(data: Data, tmp_path: Path) -> None:
    policy = tmp_path / "drift.yaml"
    policy.write_text("columns: [f0, f3]\nper_column:\n  f3: {method: psi, threshold: 0.2}\n")

    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(data.reference, data.current, config=str(policy))

    report = check()

    assert [(c.column, c.method, c.threshold) for c in report.columns] == [
        ("f0", "ks", 0.05),
        ("f3", "psi", 0.2),
    ]


def test_async_task_returns_the_same_report(data: Data) -> None:
    @flow(persist_result=False)
    async def check() -> DriftReport:
        return await acheck_drift(data.reference, data.drifted, config=CONFIG, on_failure="warn")

    @flow(persist_result=False)
    def check_sync() -> DriftReport:
        return check_drift(data.reference, data.drifted, config=CONFIG, on_failure="warn")

    report = asyncio.run(check())

    assert report.drifted_columns == list(DRIFTED_FEATURES)
    assert report.cli_dict() == check_sync().cli_dict()


# -- on_failure ----------------------------------------------------------------------------------


def test_fail_policy_fails_the_task_without_retry_naming_the_drifted_columns(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(data.reference, data.drifted, config=CONFIG)

    state = check(return_state=True)

    assert state.is_failed()
    with pytest.raises(DriftDetectedError, match=r"3 of 4 columns drifted.*f0, f1, f2") as caught:
        state.result()
    assert caught.value.report.drifted_columns == list(DRIFTED_FEATURES)
    task_run = _task_runs(_flow_run_id(state))["check_drift"]
    assert (task_run.state.is_failed(), task_run.run_count) == (True, 1)
    assert "### Data drift detected" in _artifacts(_flow_run_id(state))["markdown"].data


def test_warn_policy_logs_a_warning_and_returns_the_report(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(data.reference, data.drifted, config=CONFIG, on_failure="warn")

    state = check(return_state=True)

    assert state.is_completed()
    assert state.result().dataset_drift is True
    assert "columns drifted (share 0.75" in _logs(_flow_run_id(state))
    assert "on_failure='warn'" in _logs(_flow_run_id(state))


def test_skip_policy_returns_the_report_and_a_flow_branches_on_it(data: Data) -> None:
    @task(persist_result=False)
    def alert(columns: list[str]) -> str:
        return f"alerted on {len(columns)} columns"

    @task(persist_result=False)
    def score() -> str:
        return "scored"

    @flow(persist_result=False)
    def pipeline(current: str) -> str:
        report = check_drift(data.reference, current, config=CONFIG, on_failure="skip")
        if report.dataset_drift:
            return alert(report.drifted_columns)
        return score()

    drifted = pipeline(data.drifted, return_state=True)
    clean = pipeline(data.current, return_state=True)

    assert drifted.result() == "alerted on 3 columns"
    assert set(_task_runs(_flow_run_id(drifted))) == {"check_drift", "alert"}
    assert "downstream steps should skip" in _logs(_flow_run_id(drifted))
    assert clean.result() == "scored"
    assert set(_task_runs(_flow_run_id(clean))) == {"check_drift", "score"}


def test_bad_input_fails_whatever_the_policy_without_retry(data: Data, tmp_path: Path) -> None:
    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(
            data.reference, str(tmp_path / "missing.csv"), config=CONFIG, on_failure="skip"
        )

    state = check(return_state=True)

    with pytest.raises(DriftInputError):
        state.result()
    assert _task_runs(_flow_run_id(state))["check_drift"].run_count == 1


def test_unknown_policy_is_refused(data: Data) -> None:
    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(data.reference, data.current, on_failure="ignore")  # type: ignore[arg-type]

    with pytest.raises(ConfigurationError, match="on_failure must be one of"):
        check()


# -- MLflow ----------------------------------------------------------------------------------------


def test_report_is_logged_to_mlflow_when_a_tracking_uri_is_given(
    data: Data, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(
            data.reference,
            data.drifted,
            config=CONFIG,
            on_failure="warn",
            mlflow_tracking_uri=uri,
            mlflow_experiment="drift-tests",
        )

    state = check(return_state=True)

    markdown = _artifacts(_flow_run_id(state))["markdown"].data
    (run,) = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name("drift-tests").experiment_id]
    )
    assert run.data.metrics["drift.drifted_share"] == pytest.approx(0.75)
    assert f"| MLflow run | {run.info.run_id} |" in markdown


def test_evidently_html_report_is_linked_from_the_summary(data: Data, tmp_path: Path) -> None:
    html = tmp_path / "report.html"

    @flow(persist_result=False)
    def check() -> DriftReport:
        return check_drift(
            data.reference,
            data.drifted,
            config=CONFIG,
            engine="evidently",
            html_path=str(html),
            on_failure="warn",
        )

    state = check(return_state=True)

    report = state.result()
    assert (report.engine, report.html_uri) == ("evidently", str(html))
    assert html.is_file()
    markdown = _artifacts(_flow_run_id(state))["markdown"].data
    assert f"| HTML report | [{html}]({html.as_uri()}) |" in markdown
