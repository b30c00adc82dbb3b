"""The run_inference / arun_inference tasks in real flows, on a real Prefect server.

Model servers are real: MLflow's scoring server (``mlflow_model_server``) where predictions are
checked, guardflow's FaultServer where a fault or a recorded request header is needed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pyarrow.parquet as pq
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect.states import State
from pydantic import SecretStr

from guardflow.errors import (
    EndpointNotReadyError,
    InferenceFailedRowsError,
    InferenceHTTPError,
    OutputWriteError,
)
from guardflow.testing.fault_server import Fault, FaultServer, predict_row
from guardflow.testing.model_servers import expected_prediction, sample_rows
from prefect_guardflow._runtime import ProgressReporter, retry_on_retryable_error
from prefect_guardflow.inference import InferenceEndpoint, arun_inference, run_inference

if TYPE_CHECKING:
    from conftest import PrefectServer

    from guardflow.testing.model_servers import MLflowModelServer

PLANTED = "planted-token-5e1b2d"


# -- reading a flow run back from the Prefect API ------------------------------------------------


def _flow_run_id(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def _runs_filter(flow_run_id: UUID) -> FlowRunFilter:
    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))


def _task_runs(flow_run_id: UUID, name_prefix: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=_runs_filter(flow_run_id))
    return [r for r in runs if r.name.startswith(name_prefix)]


def _artifacts(flow_run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(flow_run_filter=_runs_filter(flow_run_id))


def _logs(flow_run_id: UUID) -> list[str]:
    APILogHandler().flush()  # logs travel to the API in the background: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs]


def _predictions(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


class RetrySpy:
    """A retry_condition_fn that records guardflow's decision, then runs ``between`` attempts."""

    def __init__(self, between: Any = None) -> None:
        self.decisions: list[tuple[str, bool]] = []
        self.between = between

    def __call__(self, task: Any, task_run: Any, state: State[Any]) -> bool:
        decision = retry_on_retryable_error(task, task_run, state)
        self.decisions.append((type(state.data).__name__, decision))
        if decision and self.between is not None:
            self.between()
        return decision


# -- results ---------------------------------------------------------------------------------------


def test_task_returns_the_summary_and_writes_one_prediction_per_row(
    mlflow_model_server: MLflowModelServer, tmp_path: Path
) -> None:
    rows = sample_rows(25, key_column="id")
    output = tmp_path / "scores.parquet"

    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        endpoint = InferenceEndpoint(url=mlflow_model_server.url, batch_size=10)
        return run_inference(rows, str(output), endpoint, key_column="id")

    summary = score()

    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (25, 25, 0)
    assert summary["batches"] == 3
    assert summary["output_uri"] == str(output)
    json.dumps(summary)  # plain JSON, as a task result should be
    written = _predictions(output)
    assert [r["id"] for r in written] == [r["id"] for r in rows]
    for row in written:
        assert row["prediction"] == pytest.approx(expected_prediction(row))


def test_async_task_returns_the_same_summary(
    mlflow_model_server: MLflowModelServer, tmp_path: Path
) -> None:
    rows = sample_rows(12, key_column="id")
    output = tmp_path / "scores.jsonl"

    @flow(persist_result=False)
    async def score() -> dict[str, Any]:
        endpoint = InferenceEndpoint(url=mlflow_model_server.url, batch_size=5)
        return await arun_inference(rows, str(output), endpoint, key_column="id")

    summary = asyncio.run(score())

    assert (summary["rows"], summary["succeeded"], summary["batches"]) == (12, 12, 3)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["prediction"] for line in lines] == pytest.approx(
        [expected_prediction(r) for r in rows]
    )


def test_results_are_not_persisted(
    prefect_server: PrefectServer, fault_server: FaultServer, tmp_path: Path
) -> None:
    @flow
    def score() -> None:
        run_inference(sample_rows(4), str(tmp_path / "out.parquet"), _endpoint(fault_server))

    # other tests' flows may persist their own results in the shared storage: compare before/after
    before = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}
    state = score(return_state=True)

    assert state.is_completed()
    (task_run,) = _task_runs(_flow_run_id(state), "run_inference")
    assert task_run.state.data is None  # a persisted result would leave a storage reference
    stored = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}
    assert stored - before == set()


# -- artifacts and logs ----------------------------------------------------------------------------


def test_progress_artifact_reaches_100_and_summary_artifact_is_keyed(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        return run_inference(
            sample_rows(30),
            str(tmp_path / "out.parquet"),
            _endpoint(fault_server, batch_size=10),
            artifact_key="nightly-scores",
        )

    state = score(return_state=True)

    artifacts = {a.type: a for a in _artifacts(_flow_run_id(state))}
    assert artifacts["progress"].key == "nightly-scores-progress"
    assert artifacts["progress"].data == 100.0
    assert artifacts["markdown"].key == "nightly-scores"
    assert "| Rows | 30 |" in artifacts["markdown"].data
    assert "| Failed (dead-lettered) | 0 |" in artifacts["markdown"].data


def test_async_progress_artifact_reaches_100(fault_server: FaultServer, tmp_path: Path) -> None:
    @flow(persist_result=False)
    async def score() -> dict[str, Any]:
        return await arun_inference(
            sample_rows(30), str(tmp_path / "out.parquet"), _endpoint(fault_server, batch_size=7)
        )

    state = asyncio.run(score(return_state=True))

    progress = [a for a in _artifacts(_flow_run_id(state)) if a.type == "progress"]
    assert [a.data for a in progress] == [100.0]


def test_a_failing_progress_update_does_not_interrupt_scoring() -> None:
    reporter = ProgressReporter(key=None, description="rows")
    reporter.artifact_id = uuid4()  # no such artifact: the API refuses the update

    reporter(5, 10)
    reporter(10, 10)

    assert reporter.artifact_id is None  # gave up after the first refusal, quietly


def test_core_progress_lines_appear_in_the_flow_run_logs(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        return run_inference(
            sample_rows(20), str(tmp_path / "out.parquet"), _endpoint(fault_server)
        )

    state = score(return_state=True)

    messages = _logs(_flow_run_id(state))
    assert any("20/20 rows done" in m for m in messages), messages
    assert any("20 rows scored" in m for m in messages), messages


def test_failed_rows_leave_a_summary_artifact_and_fail_the_task(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.add_faults(Fault.ok(), Fault.bad_request())

    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        return run_inference(
            sample_rows(20), str(tmp_path / "out.parquet"), _endpoint(fault_server, batch_size=10)
        )

    state = score(return_state=True)

    assert state.is_failed()
    with pytest.raises(InferenceFailedRowsError):
        state.result()
    (markdown,) = [a for a in _artifacts(_flow_run_id(state)) if a.type == "markdown"]
    assert "too many rows failed" in markdown.data
    assert "| Failed (dead-lettered) | 10 |" in markdown.data


# -- secrets ---------------------------------------------------------------------------------------


def test_planted_token_never_reaches_logs_results_artifacts_or_parameters(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    # Both outcomes log: a success (progress, summary) and a failure (a traceback).
    fault_server.add_faults(Fault.ok(), Fault.ok(), Fault.bad_request())
    endpoint = _endpoint(
        fault_server, batch_size=10, token=SecretStr(PLANTED), headers={"X-Api-Key": PLANTED}
    )

    @flow(persist_result=False)
    def score(endpoint: InferenceEndpoint, output: str) -> dict[str, Any]:
        return run_inference(sample_rows(20), output, endpoint)

    ok = score(endpoint, str(tmp_path / "ok.parquet"), return_state=True)
    failed = score(endpoint, str(tmp_path / "failed.parquet"), return_state=True)

    assert ok.is_completed() and failed.is_failed()
    sent = fault_server.inference_requests[0].headers
    assert sent["authorization"] == f"Bearer {PLANTED}"  # the token was in use, so it could leak
    assert sent["x-api-key"] == PLANTED
    assert PLANTED not in json.dumps(ok.result())
    with get_client(sync_client=True) as client:
        for state in (ok, failed):
            flow_run_id = _flow_run_id(state)
            assert PLANTED not in "\n".join(_logs(flow_run_id))
            assert PLANTED not in "\n".join(str(a.data) for a in _artifacts(flow_run_id))
            assert PLANTED not in json.dumps(
                client.read_flow_run(flow_run_id).parameters, default=str
            )
            assert PLANTED not in str(state.message)


# -- retries ---------------------------------------------------------------------------------------


def test_retry_condition_retries_a_server_that_is_not_ready_yet(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.ready = False  # readiness probe answers 503: the model is still loading
    spy = RetrySpy(between=lambda: setattr(fault_server, "ready", True))
    task = run_inference.with_options(retry_delay_seconds=0, retry_condition_fn=spy)

    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        return task(sample_rows(10), str(tmp_path / "out.parquet"), _endpoint(fault_server))

    state = score(return_state=True)

    assert state.is_completed()
    assert spy.decisions == [(EndpointNotReadyError.__name__, True)]
    (task_run,) = _task_runs(_flow_run_id(state), "run_inference")
    assert task_run.run_count == 2


def test_retry_condition_does_not_retry_a_bad_request(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.default_fault = Fault.bad_request()
    spy = RetrySpy()
    task = run_inference.with_options(retry_delay_seconds=0, retry_condition_fn=spy)

    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        return task(sample_rows(10), str(tmp_path / "out.parquet"), _endpoint(fault_server))

    state = score(return_state=True)

    assert state.is_failed()
    assert spy.decisions == [(InferenceFailedRowsError.__name__, False)]
    assert len(fault_server.inference_requests) == 1  # a 400 is not repeated, by nobody
    (task_run,) = _task_runs(_flow_run_id(state), "run_inference")
    assert task_run.run_count == 1


def test_batches_that_failed_on_503_are_retried_and_only_they_are_resent(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.add_faults(Fault.ok(), Fault.unavailable())
    spy = RetrySpy()
    task = run_inference.with_options(retry_delay_seconds=0, retry_condition_fn=spy)
    rows = sample_rows(20)

    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        endpoint = _endpoint(fault_server, batch_size=10, concurrency=1, max_attempts=1)
        return task(rows, str(tmp_path / "out.parquet"), endpoint)

    summary = score()

    assert spy.decisions == [(InferenceFailedRowsError.__name__, True)]
    sent = fault_server.inference_requests
    assert [r.idempotency_key for r in sent] == [
        sent[0].idempotency_key,
        sent[1].idempotency_key,
        sent[1].idempotency_key,  # the retry resends the failed batch, with the same key
    ]
    assert (summary["succeeded"], summary["batches_resumed"]) == (20, 1)
    written = _predictions(tmp_path / "out.parquet")
    assert [r["prediction"] for r in written] == pytest.approx([predict_row(r) for r in rows])


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (EndpointNotReadyError("down", url="http://127.0.0.1:1"), True),
        (OutputWriteError("disk full"), True),
        (InferenceHTTPError("503", url="http://x", status_code=503, retryable=True), True),
        (InferenceHTTPError("400", url="http://x", status_code=400, retryable=False), False),
        (InferenceFailedRowsError("rows failed", summary={}), False),
        (ValueError("not a guardflow error"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_retry_condition_follows_the_error_retryable_flag(error: Exception, retried: bool) -> None:
    from prefect import task as prefect_task

    attempts: list[int] = []

    @prefect_task(retries=1, retry_delay_seconds=0, retry_condition_fn=retry_on_retryable_error)
    def failing() -> None:
        attempts.append(1)
        raise error

    @flow(persist_result=False)
    def run() -> None:
        failing()

    assert run(return_state=True).is_failed()
    assert len(attempts) == (2 if retried else 1)


def test_retried_task_resumes_without_resending_finished_batches(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    # The first attempt scores every batch, then cannot write its output (a folder holds its
    # name); the retry must take every batch from the checkpoint and only write.
    output = tmp_path / "scores.parquet"
    output.mkdir()

    def unblock() -> None:
        output.rmdir()

    spy = RetrySpy(between=unblock)
    task = run_inference.with_options(retry_delay_seconds=0, retry_condition_fn=spy)
    rows = sample_rows(30)

    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        return task(
            rows,
            str(output),
            _endpoint(fault_server, batch_size=10),
            checkpoint_dir=str(tmp_path / "checkpoints"),
        )

    summary = score()

    assert spy.decisions == [(OutputWriteError.__name__, True)]
    assert len(fault_server.inference_requests) == 3  # one per batch, none sent twice
    assert summary["batches_resumed"] == 3
    assert summary["succeeded"] == 30
    written = _predictions(output)
    assert [r["prediction"] for r in written] == pytest.approx([predict_row(r) for r in rows])


# -- identity --------------------------------------------------------------------------------------


def test_audit_event_carries_the_prefect_run_identity(
    prefect_server: PrefectServer, fault_server: FaultServer, tmp_path: Path
) -> None:
    @flow(name="identity-check", persist_result=False)
    def score() -> dict[str, Any]:
        return run_inference(sample_rows(5), str(tmp_path / "out.parquet"), _endpoint(fault_server))

    state = score(return_state=True)

    flow_run_id = str(_flow_run_id(state))
    events = [
        json.loads(line)
        for line in prefect_server.audit_path.read_text().splitlines()
        if flow_run_id in line
    ]
    assert len(events) == 1
    identity = events[0]["identity"]
    assert identity["orchestrator"] == "prefect"
    assert identity["pipeline"] == "identity-check"
    assert identity["run_id"] == flow_run_id
    assert identity["task_id"] == "run_inference"
    assert events[0]["step_kind"] == "inference"


def _endpoint(server: FaultServer, **fields: Any) -> InferenceEndpoint:
    return InferenceEndpoint(url=server.url, **fields)
