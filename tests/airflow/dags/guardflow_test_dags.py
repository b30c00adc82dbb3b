"""DAGs that exist only for tests; dag.test() needs them in a DAG bundle (see conftest.py).

``guardflow_test_inference`` runs one InferenceOperator on files named by the run's conf, with one
retry and no retry delay, so a test sees in ``try_number`` whether Airflow retried the task.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import dag

from guardflow_airflow.operators.inference import InferenceOperator

# Short back-off keeps failing-server tests fast; the policy itself is tested in the core.
FAST_RETRY = {"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.05, "max_total_seconds": 20}


@dag(
    dag_id="guardflow_test_inference",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(0)},
)
def guardflow_test_inference() -> None:
    """Score ``conf.input_uri`` into ``conf.output_uri`` on ``guardflow_inference_default``."""
    InferenceOperator(
        task_id="score",
        input_uri="{{ dag_run.conf['input_uri'] }}",
        output_uri="{{ dag_run.conf['output_uri'] }}",
        checkpoint_dir="{{ dag_run.conf.get('checkpoint_dir') or '' }}",
        key_column="row_id",
        input_columns=["f0", "f1", "f2", "f3"],
        batch_size=10,
        concurrency=2,
        request_retry=FAST_RETRY,
    )


inference_dag = guardflow_test_inference()
