"""What an inference step leaves behind (audit event, logs, errors, summary) holds no secrets
and no row values: only fingerprints, counts and model identity."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from guardflow.audit import MemoryAuditSink
from guardflow.errors import InferenceFailedRowsError
from guardflow.fingerprint import fingerprint_table, fingerprint_uri
from guardflow.identity import RunIdentity
from guardflow.inference import (
    BatchPolicy,
    EndpointConfig,
    InferenceConfig,
    RetryPolicy,
    run_inference,
)
from guardflow.tables import read_table
from guardflow.testing.fault_server import Fault, FaultServer

TOKEN = "sk-PLANTED-TOKEN-4242"
VALUE = "PLANTED-PII-alice@example.com"
ROWS = [{"id": i, "email": VALUE, "x": float(i)} for i in range(9)]
IDENTITY = RunIdentity(orchestrator="prefect", pipeline="p", run_id="r", task_id="score")


def config(server: FaultServer) -> InferenceConfig:
    return InferenceConfig(
        endpoint=EndpointConfig(
            url=server.url, protocol="v2", model_name="model", token=SecretStr(TOKEN)
        ),
        key_column="id",
        batching=BatchPolicy(batch_size=3, concurrency=2),
        retry=RetryPolicy(max_attempts=2, initial_delay=0, retry_after_cap=0),
    )


def test_the_audit_event_records_fingerprints_counts_and_model(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    sink = MemoryAuditSink()
    out = tmp_path / "scores.parquet"
    run_inference(ROWS, out, config(fault_server), identity=IDENTITY, audit_sink=sink)
    [event] = sink.events
    assert event.step_kind == "inference"
    assert event.identity == IDENTITY
    assert event.outcome == "success"
    assert event.input_fingerprints == {"input": fingerprint_table(read_table(ROWS))}
    assert event.output_fingerprints == {"output": fingerprint_uri(out)}
    assert (event.model_name, event.model_version) == ("model", "1")
    assert event.counts == {
        "rows": 9,
        "batches": 3,
        "succeeded": 9,
        "failed": 0,
        "batches_resumed": 0,
    }


def test_a_failed_step_still_leaves_an_audit_event(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    sink = MemoryAuditSink()
    fault_server.add_faults(Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError):
        run_inference(ROWS, tmp_path / "o.parquet", config(fault_server), audit_sink=sink)
    [event] = sink.events
    assert (event.outcome, event.error_type) == ("failed", "InferenceFailedRowsError")
    assert event.counts["failed"] == 3
    assert set(event.output_fingerprints) == {"output", "dead_letter"}


def test_a_planted_token_and_row_value_never_leak(
    fault_server: FaultServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = MemoryAuditSink()
    fault_server.add_faults(
        Fault.http(401),
        Fault.malformed_json(),
        Fault.wrong_count(-1),
        Fault.unavailable(retry_after="0"),
        Fault.server_error(),
    )
    fault_server.default_fault = Fault.http(502)
    cfg = config(fault_server).model_copy(update={"batching": BatchPolicy(batch_size=2)})
    with caplog.at_level(logging.DEBUG), pytest.raises(InferenceFailedRowsError) as err:
        run_inference(ROWS, tmp_path / "o.parquet", cfg, audit_sink=sink)

    dead = (tmp_path / "o.dead_letter.jsonl").read_text()
    messages = [line.split('"_error_message": ')[1] for line in dead.splitlines()]
    leaks = {
        "logs": caplog.text,
        "exception": str(err.value) + repr(err.value),
        "summary": str(err.value.summary),
        "audit event": sink.events[0].model_dump_json(),
        "dead-letter error messages": "".join(messages),
    }
    # Every batch failed, each in its own way, so every error path wrote its message.
    assert err.value.summary["errors"] == {
        "InferenceHTTPError": 3,
        "MalformedResponseError": 2,
    }
    for where, text in leaks.items():
        assert TOKEN not in text, f"token leaked into the {where}"
        assert VALUE not in text, f"a row value leaked into the {where}"
    assert fault_server.inference_requests[0].headers["authorization"] == f"Bearer {TOKEN}"
