"""run_inference end to end on the real FaultServer: batching, outputs, dead letters, policy."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.errors import EndpointNotReadyError, InferenceFailedRowsError, InputDataError
from guardflow.identity import RunIdentity
from guardflow.inference import (
    BatchPolicy,
    EndpointConfig,
    FailurePolicy,
    InferenceConfig,
    RetryPolicy,
    arun_inference,
    predict,
    run_inference,
)
from guardflow.testing.fault_server import Fault, FaultServer, predict_row

NO_WAIT = RetryPolicy(initial_delay=0, retry_after_cap=0)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"row-{i}", "x": float(i), "y": i % 3} for i in range(n)]


def config(server: FaultServer, *, batch: int = 3, concurrency: int = 1, **extra: Any):
    return InferenceConfig(
        endpoint=EndpointConfig(url=server.url),
        key_column="id",
        batching=BatchPolicy(batch_size=batch, concurrency=concurrency),
        retry=NO_WAIT,
        **extra,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected(row: dict[str, Any]) -> float:
    return predict_row({k: v for k, v in row.items() if k not in ("id", "prediction")})


def test_every_row_gets_its_own_prediction_beside_its_key(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = rows(20)
    # Early batches answer last, so answers arrive out of order.
    fault_server.add_faults(Fault.slow(0.3), Fault.slow(0.2), Fault.slow(0.1))
    out = tmp_path / "scores.parquet"
    summary = run_inference(data, out, config(fault_server, batch=2, concurrency=4))
    written = pq.read_table(out).to_pylist()
    assert [r["id"] for r in written] == [r["id"] for r in data]
    assert all(r["prediction"] == expected(r) for r in written)
    assert (summary.rows, summary.succeeded, summary.failed, summary.batches) == (20, 20, 0, 10)
    assert written[0].keys() == {"id", "x", "y", "prediction"}


def test_rows_are_sent_in_batches_of_the_configured_size(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    run_inference(rows(10), tmp_path / "o.parquet", config(fault_server, batch=4))
    assert sorted(r.rows for r in fault_server.inference_requests) == [2, 4, 4]


def test_the_key_column_is_not_sent_to_the_model(fault_server: FaultServer, tmp_path: Path) -> None:
    run_inference(rows(2), tmp_path / "o.parquet", config(fault_server))
    [request] = fault_server.inference_requests
    assert request.body["dataframe_split"]["columns"] == ["x", "y"]


def test_only_the_input_columns_are_sent(fault_server: FaultServer, tmp_path: Path) -> None:
    cfg = config(fault_server, input_columns=["x"])
    run_inference(rows(2), tmp_path / "o.parquet", cfg)
    [request] = fault_server.inference_requests
    assert request.body["dataframe_split"]["columns"] == ["x"]


def test_each_batch_has_its_own_idempotency_key_kept_across_retries(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.add_faults(Fault.unavailable(), Fault.throttle(retry_after="1"))
    summary = run_inference(rows(9), tmp_path / "o.parquet", config(fault_server))
    keys = [r.idempotency_key for r in fault_server.inference_requests]
    assert len(keys) == 5 and len(set(keys)) == 3
    assert keys[:3] == [keys[0]] * 3  # batch 0: two retries, same key
    assert all(k and k.startswith(summary.step_key) for k in keys)


def test_the_output_can_be_json_lines(fault_server: FaultServer, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    run_inference(rows(4), out, config(fault_server))
    assert [r["prediction"] for r in read_jsonl(out)] == [expected(r) for r in rows(4)]


def test_a_malformed_answer_sends_its_batch_to_the_dead_letter_output(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.add_faults(Fault.ok(), Fault.malformed_json())
    cfg = config(fault_server, failure=FailurePolicy(max_failed_fraction=0.5))
    summary = run_inference(rows(9), tmp_path / "scores.parquet", cfg)
    dead = read_jsonl(tmp_path / "scores.dead_letter.jsonl")
    assert [r["id"] for r in dead] == ["row-3", "row-4", "row-5"]
    assert {r["_error_type"] for r in dead} == {"MalformedResponseError"}
    assert "not valid JSON" in dead[0]["_error_message"]
    assert (summary.failed, summary.errors) == (3, {"MalformedResponseError": 1})
    assert summary.dead_letter_uri == str(tmp_path / "scores.dead_letter.jsonl")


def test_a_wrong_prediction_count_sends_its_batch_to_the_dead_letter_output(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.add_faults(Fault.wrong_count(-1))
    cfg = config(fault_server, failure=FailurePolicy(max_failed_fraction=0.5))
    run_inference(rows(6), tmp_path / "scores.parquet", cfg)
    dead = read_jsonl(tmp_path / "scores.dead_letter.jsonl")
    assert [(r["_row_index"], r["_batch_index"]) for r in dead] == [(0, 0), (1, 0), (2, 0)]
    assert "expected 3 predictions, got 2" in dead[0]["_error_message"]


def test_too_many_failures_fail_the_step_after_writing_both_outputs(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.add_faults(Fault.ok(), Fault.bad_request())
    out = tmp_path / "scores.parquet"
    with pytest.raises(InferenceFailedRowsError) as err:
        run_inference(rows(10), out, config(fault_server))
    scored = {r["id"] for r in pq.read_table(out).to_pylist()}
    failed = {r["id"] for r in read_jsonl(tmp_path / "scores.dead_letter.jsonl")}
    assert scored.isdisjoint(failed)
    assert scored | failed == {r["id"] for r in rows(10)}  # nothing lost
    assert err.value.summary["failed"] == 3
    assert "3 of 10 rows failed" in str(err.value)


def test_failed_rows_are_worth_a_task_retry_only_when_every_failure_was_transient(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    cfg = config(fault_server).model_copy(update={"retry": RetryPolicy(max_attempts=1)})
    fault_server.add_faults(Fault.unavailable())
    with pytest.raises(InferenceFailedRowsError) as transient:
        run_inference(rows(6), tmp_path / "a.parquet", cfg)
    fault_server.add_faults(Fault.unavailable(), Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError) as permanent:
        run_inference(rows(6), tmp_path / "b.parquet", cfg)
    assert (transient.value.retryable, permanent.value.retryable) == (True, False)


def test_failures_within_the_policy_let_the_step_succeed(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.add_faults(Fault.bad_request())
    cfg = config(fault_server, failure=FailurePolicy(max_failed_fraction=0.3))
    summary = run_inference(rows(10), tmp_path / "o.parquet", cfg)
    assert (summary.succeeded, summary.failed) == (7, 3)


def test_a_server_that_is_down_stops_the_step_before_any_batch(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.stop()
    with pytest.raises(EndpointNotReadyError, match="not reachable"):
        run_inference(rows(3), tmp_path / "o.parquet", config(fault_server))
    assert not (tmp_path / "o.parquet").exists()


def test_a_model_that_is_not_loaded_stops_the_step_before_any_batch(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.ready = False
    with pytest.raises(EndpointNotReadyError, match="not ready or not loaded"):
        run_inference(rows(3), tmp_path / "o.parquet", config(fault_server))
    assert fault_server.inference_requests == []


def test_the_probe_can_be_turned_off(fault_server: FaultServer, tmp_path: Path) -> None:
    fault_server.ready = False
    run_inference(rows(3), tmp_path / "o.parquet", config(fault_server, probe=False))
    assert [r.method for r in fault_server.requests] == ["POST"]


def test_a_missing_key_column_is_an_input_error(fault_server: FaultServer, tmp_path: Path) -> None:
    cfg = config(fault_server).model_copy(update={"key_column": "customer"})
    with pytest.raises(InputDataError, match="no column"):
        run_inference(rows(3), tmp_path / "o.parquet", cfg)


def test_progress_is_reported_after_each_batch(fault_server: FaultServer, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    run_inference(
        rows(7),
        tmp_path / "o.parquet",
        config(fault_server),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_progress_is_logged_with_rows_per_second(
    fault_server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="guardflow.inference"):
        run_inference(rows(7), tmp_path / "o.parquet", config(fault_server))
    assert any("7/7 rows done" in m and "rows/s" in m for m in caplog.messages)


def test_predict_returns_keys_and_predictions_in_memory(fault_server: FaultServer) -> None:
    fault_server.add_faults(Fault.ok(), Fault.bad_request())
    cfg = config(fault_server, failure=FailurePolicy(max_failed_fraction=0.5))
    result = predict(rows(6), cfg)
    assert result.keys == [f"row-{i}" for i in range(6)]
    assert result.predictions[:3] == [expected(r) for r in rows(3)]
    assert result.predictions[3:] == [None, None, None]
    assert result.failed_keys == ["row-3", "row-4", "row-5"]
    assert result.summary.output_uri is None


def test_without_a_key_column_the_position_is_the_key(fault_server: FaultServer) -> None:
    cfg = config(fault_server).model_copy(update={"key_column": None})
    result = predict([{"x": 1.0}, {"x": 2.0}], cfg)
    assert (result.keys, result.predictions) == ([0, 1], [1.0, 2.0])


async def test_the_async_step_scores_like_the_sync_one(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    summary = await arun_inference(rows(5), tmp_path / "o.parquet", config(fault_server))
    assert summary.succeeded == 5


async def test_the_sync_step_works_inside_a_running_event_loop(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    asyncio.get_running_loop()  # as in a notebook or an async flow calling sync code
    summary = run_inference(rows(5), tmp_path / "o.parquet", config(fault_server))
    assert summary.succeeded == 5


def test_the_v2_model_name_and_version_reach_the_summary(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    cfg = config(fault_server).model_copy(
        update={"endpoint": EndpointConfig(url=fault_server.url, protocol="v2", model_name="model")}
    )
    summary = run_inference(rows(3), tmp_path / "o.parquet", cfg, identity=RunIdentity())
    assert (summary.model_name, summary.model_version) == ("model", "1")
    assert summary.latency_ms.max >= summary.latency_ms.p50 > 0


def test_audit_event_is_left_with_the_summary_counts(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    sink = MemoryAuditSink()
    summary = run_inference(rows(4), tmp_path / "o.parquet", config(fault_server), audit_sink=sink)
    [event] = sink.events
    assert event.counts["rows"] == summary.rows == 4
    assert event.attributes["step_key"] == summary.step_key
