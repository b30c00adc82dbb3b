"""Data-quality DAGs that exist only for tests; dag.test() needs them in a DAG bundle.

Each DAG validates ``conf['data_uri']`` against :data:`SUITE` (the sample's columns present,
keys unique and not null, features within [-10, 10]):

- ``guardflow_test_quality_fail`` / ``_warn`` / ``_skip``: ``check_quality``
  (DataQualityOperator with that ``on_failure``) upstream of ``after``;
- ``guardflow_test_quality_branch``: DataQualityBranchOperator choosing ``on_passed`` or
  ``on_failed``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import dag, task

from guardflow.samples import FEATURES, KEY_COLUMN
from guardflow_airflow.operators.quality import DataQualityBranchOperator, DataQualityOperator

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
# One retry without delay: try_number shows whether Airflow retried a failed check.
RETRY_ONCE = {"retries": 1, "retry_delay": timedelta(0)}
DATA_URI = "{{ dag_run.conf['data_uri'] }}"
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


@task
def after() -> str:
    """Record that the downstream task ran."""
    return "ran"


def _policy_dag(policy: Any) -> Any:
    @dag(
        dag_id=f"guardflow_test_quality_{policy}",
        schedule=None,
        start_date=START,
        catchup=False,
        default_args=RETRY_ONCE,
    )
    def policy_dag() -> None:
        check = DataQualityOperator(
            task_id="check_quality",
            data_uri=DATA_URI,
            suite=SUITE,
            on_failure=policy,
            mlflow_tracking_uri="{{ dag_run.conf.get('mlflow_tracking_uri') or '' }}",
        )
        check >> after()

    return policy_dag()


quality_fail = _policy_dag("fail")
quality_warn = _policy_dag("warn")
quality_skip = _policy_dag("skip")


@task
def on_passed() -> str:
    """The branch valid data takes."""
    return "passed"


@task
def on_failed() -> str:
    """The branch invalid data takes."""
    return "failed"


@dag(dag_id="guardflow_test_quality_branch", schedule=None, start_date=START, catchup=False)
def quality_branch_dag() -> None:
    """DataQualityBranchOperator choosing between two downstream tasks."""
    branch = DataQualityBranchOperator(
        task_id="check_quality",
        data_uri=DATA_URI,
        suite=SUITE,
        follow_task_ids_if_passed="on_passed",
        follow_task_ids_if_failed="on_failed",
    )
    branch >> [on_passed(), on_failed()]


quality_branch = quality_branch_dag()
