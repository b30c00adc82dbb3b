"""A retried step resumes: batches finished by an earlier attempt are not sent again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from guardflow.errors import InferenceFailedRowsError
from guardflow.identity import RunIdentity
from guardflow.inference import (
    BatchPolicy,
    EndpointConfig,
    InferenceConfig,
    RetryPolicy,
    run_inference,
)
from guardflow.testing.fault_server import Fault, FaultServer

FIRST = RunIdentity(orchestrator="airflow", pipeline="score", run_id="r1", task_id="t", attempt=1)
RETRY = FIRST.model_copy(update={"attempt": 2})
ROWS = [{"id": i, "x": float(i)} for i in range(10)]


def config(server: FaultServer, **batching: Any) -> InferenceConfig:
    return InferenceConfig(
        endpoint=EndpointConfig(url=server.url),
        key_column="id",
        batching=BatchPolicy(batch_size=2, concurrency=1, **batching),
        retry=RetryPolicy(max_attempts=2, initial_delay=0, retry_after_cap=0),
    )


def fail_batch_two_then_rerun(server: FaultServer, out: Path) -> list[str | None]:
    """First attempt: batch 2 fails for good. Returns the keys the first attempt sent."""
    server.add_faults(Fault.ok(), Fault.ok(), Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError):
        run_inference(ROWS, out, config(server), identity=FIRST)
    sent = [r.idempotency_key for r in server.inference_requests]
    return sent


def test_a_retried_step_sends_only_the_batches_that_did_not_finish(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    first_keys = fail_batch_two_then_rerun(fault_server, out)
    before = len(fault_server.inference_requests)

    summary = run_inference(ROWS, out, config(fault_server), identity=RETRY)

    resent = fault_server.inference_requests[before:]
    assert [r.idempotency_key for r in resent] == [first_keys[2]]
    assert (summary.batches_resumed, summary.succeeded, summary.failed) == (4, 10, 0)
    assert sorted(r["id"] for r in pq.read_table(out).to_pylist()) == list(range(10))


def test_a_successful_retry_removes_checkpoints_and_the_stale_dead_letter_output(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    fail_batch_two_then_rerun(fault_server, out)
    assert (tmp_path / ".scores.parquet.checkpoints").is_dir()
    assert (tmp_path / "scores.dead_letter.jsonl").is_file()

    run_inference(ROWS, out, config(fault_server), identity=RETRY)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]


def test_another_run_does_not_reuse_the_checkpoints(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    fail_batch_two_then_rerun(fault_server, out)
    before = len(fault_server.inference_requests)
    other_run = FIRST.model_copy(update={"run_id": "r2"})

    summary = run_inference(ROWS, out, config(fault_server), identity=other_run)

    assert summary.batches_resumed == 0
    assert len(fault_server.inference_requests) - before == 5


def test_a_crash_mid_run_resumes_from_the_batches_already_checkpointed(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    class Crash(Exception):
        pass

    def crash_after_three_batches(done: int, total: int) -> None:
        if done == 6:
            raise Crash  # the worker dies: no outputs, checkpoints stay

    out = tmp_path / "scores.jsonl"
    with pytest.raises(Crash):
        run_inference(
            ROWS, out, config(fault_server), identity=FIRST, progress=crash_after_three_batches
        )
    assert not out.exists()
    before = len(fault_server.inference_requests)

    summary = run_inference(ROWS, out, config(fault_server), identity=RETRY)

    assert summary.batches_resumed == 3
    assert len(fault_server.inference_requests) - before == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == list(range(10))
    assert [r["prediction"] for r in lines] == [float(i) for i in range(10)]


def test_the_checkpoint_folder_can_be_chosen(fault_server: FaultServer, tmp_path: Path) -> None:
    out, checkpoints = tmp_path / "out" / "scores.parquet", tmp_path / "ckpt"
    fault_server.add_faults(Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError):
        run_inference(
            ROWS, out, config(fault_server), identity=FIRST, checkpoint_dir=str(checkpoints)
        )
    (folder,) = checkpoints.iterdir()  # one folder per step key
    journal = (folder / "journal.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in journal) == [1, 2, 3, 4]


def test_a_checkpoint_line_torn_by_a_crash_is_ignored_and_its_batch_resent(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    out, checkpoints = tmp_path / "scores.jsonl", tmp_path / "ckpt"
    fault_server.add_faults(Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError):
        run_inference(
            ROWS, out, config(fault_server), identity=FIRST, checkpoint_dir=str(checkpoints)
        )
    (journal,) = checkpoints.glob("*/journal.jsonl")
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    before = len(fault_server.inference_requests)

    summary = run_inference(
        ROWS, out, config(fault_server), identity=RETRY, checkpoint_dir=str(checkpoints)
    )

    assert summary.batches_resumed == 3
    assert len(fault_server.inference_requests) - before == 2
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(range(10))


def test_a_changed_batch_size_does_not_reuse_the_checkpoints(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    fail_batch_two_then_rerun(fault_server, out)
    cfg = config(fault_server).model_copy(update={"batching": BatchPolicy(batch_size=5)})

    summary = run_inference(ROWS, out, cfg, identity=RETRY)

    assert summary.batches_resumed == 0


def test_checkpoints_work_on_an_fsspec_uri(fault_server: FaultServer) -> None:
    import fsspec

    out = "memory://guardflow-resume-test/scores.parquet"
    fault_server.add_faults(Fault.ok(), Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError):
        run_inference(ROWS, out, config(fault_server), identity=FIRST)
    before = len(fault_server.inference_requests)

    summary = run_inference(ROWS, out, config(fault_server), identity=RETRY)

    assert (summary.batches_resumed, len(fault_server.inference_requests) - before) == (4, 1)
    fs = fsspec.filesystem("memory")
    assert fs.ls("/guardflow-resume-test", detail=False) == [
        "/guardflow-resume-test/scores.parquet"
    ]
    fs.rm("/guardflow-resume-test", recursive=True)


def test_after_a_torn_line_the_next_checkpoint_still_counts_on_a_later_resume(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    out, checkpoints = tmp_path / "scores.jsonl", tmp_path / "ckpt"
    fault_server.add_faults(Fault.bad_request(), Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError):  # batches 0 and 1 fail, 2-4 checkpointed
        run_inference(
            ROWS, out, config(fault_server), identity=FIRST, checkpoint_dir=str(checkpoints)
        )
    (journal,) = checkpoints.glob("*/journal.jsonl")
    text = journal.read_text()
    journal.write_text(text[: len(text) - 5])  # the crash cut batch 4's line short
    fault_server.add_faults(Fault.ok(), Fault.bad_request())  # 0 now succeeds, 1 fails again
    with pytest.raises(InferenceFailedRowsError):
        run_inference(
            ROWS, out, config(fault_server), identity=RETRY, checkpoint_dir=str(checkpoints)
        )
    before = len(fault_server.inference_requests)

    summary = run_inference(
        ROWS, out, config(fault_server), identity=RETRY, checkpoint_dir=str(checkpoints)
    )

    assert summary.batches_resumed == 4  # 0, 2, 3 and the re-sent 4: only batch 1 goes out
    assert len(fault_server.inference_requests) - before == 1


def test_a_shared_checkpoint_dir_never_resumes_a_different_input(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "ckpt"
    fault_server.add_faults(Fault.bad_request())
    with pytest.raises(InferenceFailedRowsError):
        run_inference(
            ROWS, tmp_path / "a.jsonl", config(fault_server), identity=FIRST,
            checkpoint_dir=str(checkpoints),
        )  # fmt: skip
    changed = [{"id": r["id"], "x": r["x"] + 100} for r in ROWS]  # same shape, other values

    summary = run_inference(
        changed, tmp_path / "b.jsonl", config(fault_server), identity=FIRST,
        checkpoint_dir=str(checkpoints),
    )  # fmt: skip

    assert summary.batches_resumed == 0
    lines = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in lines] == [float(i) + 100 for i in range(10)]
