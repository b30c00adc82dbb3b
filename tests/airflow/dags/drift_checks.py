"""Drift check DAGs that exist only for tests; dag.test() needs them in a DAG bundle.

Each DAG reads its inputs from the run's conf (``reference_uri``, ``current_uri``, optional
``html_uri`` and ``mlflow_tracking_uri``), so one DAG serves drifted and undrifted data alike:

- ``guardflow_test_drift_fail`` / ``_warn`` / ``_skip``: ``check_drift`` (DriftCheckOperator with
  that ``on_failure``) upstream of ``after``, a task that records that it ran;
- ``guardflow_test_drift_branch``: DriftCheckBranchOperator choosing ``on_drift`` or
  ``on_no_drift``;
- ``guardflow_test_drift_html``: the Evidently engine writing an HTML report (the extra link).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import dag, task

from guardflow.samples import FEATURES
from guardflow_airflow.operators.drift import DriftCheckBranchOperator, DriftCheckOperator

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
# One retry without delay: try_number shows whether Airflow retried a failed check.
RETRY_ONCE = {"retries": 1, "retry_delay": timedelta(0)}
# The key column is an identifier: every value is new, so it is left out of the comparison.
CONFIG = {"columns": list(FEATURES)}
INPUTS = {
    "reference_uri": "{{ dag_run.conf['reference_uri'] }}",
    "current_uri": "{{ dag_run.conf['current_uri'] }}",
}


@task
def after() -> str:
    """Record that the downstream task ran."""
    return "ran"


def _policy_dag(policy: Any) -> Any:
    @dag(
        dag_id=f"guardflow_test_drift_{policy}",
        schedule=None,
        start_date=START,
        catchup=False,
        default_args=RETRY_ONCE,
    )
    def policy_dag() -> None:
        check = DriftCheckOperator(
            task_id="check_drift",
            config=CONFIG,
            on_failure=policy,
            mlflow_tracking_uri="{{ dag_run.conf.get('mlflow_tracking_uri') or '' }}",
            mlflow_experiment="{{ dag_run.conf.get('mlflow_experiment') or '' }}",
            **INPUTS,
        )
        check >> after()

    return policy_dag()


drift_fail = _policy_dag("fail")
drift_warn = _policy_dag("warn")
drift_skip = _policy_dag("skip")


@task
def on_drift() -> str:
    """The branch a drifted dataset takes."""
    return "drift"


@task
def on_no_drift() -> str:
    """The branch an undrifted dataset takes."""
    return "no drift"


@dag(dag_id="guardflow_test_drift_branch", schedule=None, start_date=START, catchup=False)
def drift_branch_dag() -> None:
    """DriftCheckBranchOperator choosing between two downstream tasks."""
    branch = DriftCheckBranchOperator(
        task_id="check_drift",
        config=CONFIG,
        follow_task_ids_if_drift="on_drift",
        follow_task_ids_if_no_drift="on_no_drift",
        **INPUTS,
    )
    branch >> [on_drift(), on_no_drift()]


drift_branch = drift_branch_dag()


@dag(dag_id="guardflow_test_drift_html", schedule=None, start_date=START, catchup=False)
def drift_html_dag() -> None:
    """Evidently renders the HTML report the task's "Drift report" link points at."""
    DriftCheckOperator(
        task_id="check_drift",
        config=CONFIG,
        engine="evidently",
        html_uri="{{ dag_run.conf['html_uri'] }}",
        on_failure="warn",
        **INPUTS,
    )


drift_html = drift_html_dag()
