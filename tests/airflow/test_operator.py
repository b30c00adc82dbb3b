"""InferenceOperator run by Airflow itself (``dag.test()``) against real model servers.

The DAG is ``guardflow_test_inference`` in ``tests/airflow/dags``: one InferenceOperator with one
task retry and no retry delay, so ``try_number`` tells whether Airflow retried the task.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from guardflow.testing.model_servers import expected_prediction, sample_rows

TEST_DAGS = Path(__file__).resolve().parent / "dags" / "guardflow_test_dags.py"
DAG_ID = "guardflow_test_inference"
SUMMARY_FIELDS = {
    "rows",
    "succeeded",
    "failed",
    "batches",
    "batches_resumed",
    "output_uri",
    "dead_letter_uri",
    "model_name",
    "model_version",
    "step_key",
    "duration_s",
    "rows_per_second",
    "latency_ms",
    "errors",
}

pytestmark = pytest.mark.timeout(300)


def _write_input(path: Path, rows: int) -> list[dict[str, Any]]:
    data = sample_rows(rows, seed=3, key_column="row_id")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    return data


@pytest.fixture
def run_test_dag(
    load_dag: Callable[[Path, str], Any], tmp_path: Path
) -> Callable[..., tuple[Any, Path]]:
    """Return ``run(rows=40, logical_date=None) -> (dag_run, output path)``."""
    dag = load_dag(TEST_DAGS, DAG_ID)

    def run(rows: int = 40, logical_date: datetime | None = None) -> tuple[Any, Path]:
        source, output = tmp_path / "input.csv", tmp_path / "scores.parquet"
        if not source.exists():
            _write_input(source, rows)
        conf = {"input_uri": str(source), "output_uri": str(output)}
        kwargs = {"logical_date": logical_date} if logical_date else {}
        return dag.test(run_conf=conf, **kwargs), output

    return run


def test_summary_goes_to_xcom(
    inference_conn: str, run_test_dag: Callable[..., tuple[Any, Path]], run_summary: Any
) -> None:
    dag_run, output = run_test_dag(rows=40)

    result = run_summary(dag_run)
    summary = result.xcom[("score", "return_value")]
    assert result.tasks["score"] == ("success", 1)
    assert set(summary) == SUMMARY_FIELDS
    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (40, 40, 0)
    assert (summary["batches"], summary["batches_resumed"]) == (4, 0)
    assert summary["output_uri"] == str(output)


def test_every_row_gets_its_own_prediction(
    inference_conn: str, run_test_dag: Callable[..., tuple[Any, Path]]
) -> None:
    import pyarrow.parquet as pq

    _, output = run_test_dag(rows=40)

    rows = pq.read_table(output).to_pylist()
    assert [r["row_id"] for r in rows] == [f"row-{i}" for i in range(40)]
    for row in rows:
        assert row["prediction"] == pytest.approx(expected_prediction(row))


def test_audit_event_carries_the_airflow_identity(
    inference_conn: str, run_test_dag: Callable[..., tuple[Any, Path]], airflow_home: Path
) -> None:
    from guardflow.audit import JsonlAuditSink

    dag_run, _ = run_test_dag(rows=20)

    (event,) = [
        e
        for e in JsonlAuditSink(airflow_home / "audit.jsonl").read()
        if e.identity.run_id == dag_run.run_id
    ]
    assert event.step_kind == "inference"
    assert event.outcome == "success"
    ident = event.identity
    assert (ident.orchestrator, ident.pipeline, ident.task_id) == ("airflow", DAG_ID, "score")
    assert (ident.map_index, ident.attempt) == (-1, 1)


def test_planted_token_never_reaches_logs_xcom_or_the_metadata_db(
    inference_conn: str,
    run_test_dag: Callable[..., tuple[Any, Path]],
    run_summary: Any,
    airflow_db: Path,
    planted_token: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dag_run, _ = run_test_dag(rows=20)

    console = "".join(capfd.readouterr())
    assert "Scoring" in console  # the task log was captured
    assert planted_token not in console + caplog.text
    assert planted_token not in repr(run_summary(dag_run).xcom)
    assert planted_token.encode() not in airflow_db.read_bytes()


def test_progress_is_logged(
    inference_conn: str,
    run_test_dag: Callable[..., tuple[Any, Path]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="guardflow.inference")

    run_test_dag(rows=40)

    assert any("20/40 rows done (50%)" in m for m in caplog.messages)
    assert any("40/40 rows done (100%)" in m for m in caplog.messages)


def test_retried_and_cleared_tries_resume_finished_batches(
    inference_conn: str,
    load_dag: Callable[[Path, str], Any],
    run_summary: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every batch is scored, then the output cannot be written (its folder is a file): a
    # retryable error. Airflow's retry must not send the batches again, and neither must a
    # later run of the same task instance (same run id: dag.test() replaces the run, as
    # clearing the task would) once the output folder is fixed.
    dag = load_dag(TEST_DAGS, DAG_ID)
    source, blocked = tmp_path / "input.csv", tmp_path / "out"
    _write_input(source, 40)
    blocked.write_text("not a folder")
    conf = {
        "input_uri": str(source),
        "output_uri": str(blocked / "scores.parquet"),
        "checkpoint_dir": str(tmp_path / "checkpoints"),
    }
    when = datetime(2025, 6, 1, tzinfo=timezone.utc)

    caplog.set_level(logging.INFO, logger="guardflow.inference")

    first = run_summary(dag.test(run_conf=conf, logical_date=when, run_after=when))
    first_log = caplog.text
    blocked.unlink()
    second = run_summary(dag.test(run_conf=conf, logical_date=when, run_after=when))

    assert first.tasks["score"] == ("failed", 2)
    assert "resuming, 4 of 4 batches already done" in first_log
    assert second.tasks["score"] == ("success", 1)
    summary = second.xcom[("score", "return_value")]
    assert (summary["batches"], summary["batches_resumed"], summary["succeeded"]) == (4, 4, 40)


def test_non_retryable_error_fails_without_retry(
    set_inference_conn: Callable[..., None],
    mlflow_model_server: Any,
    run_test_dag: Callable[..., tuple[Any, Path]],
    run_summary: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    set_inference_conn(mlflow_model_server.url, protocol="grpc")

    dag_run, output = run_test_dag(rows=20)

    result = run_summary(dag_run)
    assert result.state == "failed"
    assert result.tasks["score"] == ("failed", 1)
    assert "AirflowFailException" in "".join(capfd.readouterr())
    assert not output.exists()


def test_rows_beyond_the_failure_policy_fail_the_task_with_a_summary(
    inference_conn: str,
    load_dag: Callable[[Path, str], Any],
    run_summary: Any,
    tmp_path: Path,
) -> None:
    # Text where the model's signature wants numbers: MLflow answers 400 to every batch.
    source, output = tmp_path / "input.csv", tmp_path / "scores.parquet"
    rows = [{**r, "f0": "n/a"} for r in sample_rows(20, key_column="row_id")]
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    dag = load_dag(TEST_DAGS, DAG_ID)

    result = run_summary(dag.test(run_conf={"input_uri": str(source), "output_uri": str(output)}))

    assert result.tasks["score"] == ("failed", 1)
    summary = result.xcom[("score", "inference_summary")]
    assert (summary["rows"], summary["failed"]) == (20, 20)
    assert Path(summary["dead_letter_uri"]).is_file()
    assert ("score", "return_value") not in result.xcom


def test_retryable_error_is_retried_by_airflow(
    set_inference_conn: Callable[..., None],
    unused_tcp_port: int,
    run_test_dag: Callable[..., tuple[Any, Path]],
    run_summary: Any,
) -> None:
    set_inference_conn(f"http://127.0.0.1:{unused_tcp_port}")

    dag_run, _ = run_test_dag(rows=20)

    assert run_summary(dag_run).tasks["score"] == ("failed", 2)
