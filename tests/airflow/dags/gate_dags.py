"""Approval gate DAGs that exist only for tests; dag.test() needs them in a DAG bundle.

Each DAG reads its policy from a YAML file named in the run's conf (``policy_path``; the test
writes it with the store URL, notifiers, review page URL, quorum and expiry it needs) and shows
reviewers ``customer`` (from the conf) in the body and context, so tests can plant a PII value:

- ``guardflow_test_gate_skip`` / ``_fail``: ``gate`` (ApprovalGateOperator with that
  ``on_reject``) upstream of ``deliver``;
- ``guardflow_test_gate_branch``: GateBranchOperator following ``deliver`` on approve and
  ``quarantine`` on reject.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import dag, task

from guardflow_airflow.operators.gates import ApprovalGateOperator, GateBranchOperator

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
# One retry without delay: try_number shows whether Airflow retried a failed gate.
RETRY_ONCE = {"retries": 1, "retry_delay": timedelta(0)}
GATE: dict[str, Any] = {
    "subject": "Deliver batch {{ dag_run.conf.get('batch', 'b1') }}?",
    "body": "Scores for **{{ dag_run.conf.get('customer', 'n/a') }}** are ready.",
    "context": {"customer": "{{ dag_run.conf.get('customer', 'n/a') }}", "rows": 3},
    "policy": "{{ dag_run.conf['policy_path'] }}",
}


@task
def deliver() -> str:
    """The task an approval lets run."""
    return "delivered"


@task
def quarantine() -> str:
    """The task a rejection leads to (branch DAG)."""
    return "quarantined"


def _approval_dag(on_reject: Any) -> Any:
    @dag(
        dag_id=f"guardflow_test_gate_{on_reject}",
        schedule=None,
        start_date=START,
        catchup=False,
        default_args=RETRY_ONCE,
    )
    def approval_dag() -> None:
        ApprovalGateOperator(task_id="gate", on_reject=on_reject, **GATE) >> deliver()

    return approval_dag()


gate_skip = _approval_dag("skip")
gate_fail = _approval_dag("fail")


@dag(
    dag_id="guardflow_test_gate_branch",
    schedule=None,
    start_date=START,
    catchup=False,
    default_args=RETRY_ONCE,
)
def gate_branch_dag() -> None:
    """GateBranchOperator choosing between delivery and quarantine."""
    choose = GateBranchOperator(
        task_id="gate",
        options_mapping={"approve": "deliver", "reject": "quarantine"},
        **GATE,
    )
    choose >> [deliver(), quarantine()]


gate_branch = gate_branch_dag()
