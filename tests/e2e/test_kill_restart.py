"""A model server killed mid-run, restarted, and the task retried: one prediction per row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.errors import InferenceError
from guardflow.identity import RunIdentity
from guardflow.inference import InferenceConfig, run_inference
from guardflow.inference.config import BatchPolicy, RetryPolicy
from guardflow.testing.model_servers import MLflowModelServer, expected_prediction, sample_rows

pytestmark = pytest.mark.timeout(600)

ROWS, BATCH, KILL_AFTER = 200, 20, 3


def _invocations_since_last_start(server: MLflowModelServer) -> int:
    section = server.log_path.read_text().rsplit("=== guardflow: start #", 1)[-1]
    return section.count('"POST /invocations HTTP/1.1" 200')


def test_retry_after_a_server_crash_yields_exactly_one_prediction_per_row(
    mlflow_model_server: MLflowModelServer, tmp_path: Path, guardflow_audit_sink: MemoryAuditSink
) -> None:
    rows = sample_rows(ROWS, key_column="id")
    output = tmp_path / "scored.jsonl"
    config = InferenceConfig(
        endpoint=mlflow_model_server.endpoint(),
        key_column="id",
        batching=BatchPolicy(batch_size=BATCH, concurrency=1),
        retry=RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.05),
    )

    def crash_after_some_batches(done: int, total: int) -> None:
        if done == KILL_AFTER * BATCH:
            mlflow_model_server.kill()

    first = RunIdentity(pipeline="e2e", run_id="kill-restart", task_id="score", attempt=1)
    try:
        with pytest.raises(InferenceError):
            run_inference(
                rows,
                str(output),
                config,
                identity=first,
                progress=crash_after_some_batches,
                audit_sink=guardflow_audit_sink,
            )
    finally:
        mlflow_model_server.start()

    summary = run_inference(
        rows, str(output), config, identity=first.model_copy(update={"attempt": 2})
    )

    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["id"] for r in written) == sorted(r["id"] for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert all(
        out["prediction"] == pytest.approx(expected_prediction(by_id[out["id"]])) for out in written
    )
    assert (summary.succeeded, summary.failed) == (ROWS, 0)
    assert summary.batches_resumed >= KILL_AFTER
    assert _invocations_since_last_start(mlflow_model_server) == (
        summary.batches - summary.batches_resumed
    )
