"""PII DAGs that exist only for tests (tests/airflow/test_pii_operators.py).

Each DAG reads its file paths from the run's conf (``input_uri``, ``output_uri``), so one DAG
serves every dataset:

- ``guardflow_test_pii_mask``: PIIMaskOperator with a policy given as a dict, then ``after``;
- ``guardflow_test_pii_mask_tokenize``: PIIMaskOperator tokenizing e-mail addresses through the
  Vault connection ``guardflow_test_pii_vault``;
- ``guardflow_test_pii_scan_fail`` / ``_warn``: PIIScanOperator with that ``on_found``, then
  ``after``;
- ``guardflow_test_pii_workers``: PIIMaskOperator then PIIScanOperator, each with two
  detection processes (``workers=2``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import dag, task

from guardflow_airflow.operators.pii import PIIMaskOperator, PIIScanOperator

VAULT_CONN_ID = "guardflow_test_pii_vault"
MASK_POLICY: dict[str, Any] = {
    "columns": {"email": {"entity": "EMAIL_ADDRESS", "action": "replace"}},
    "free_text_columns": ["notes"],
}
TOKENIZE_POLICY: dict[str, Any] = {
    "columns": {"email": {"entity": "EMAIL_ADDRESS", "action": "tokenize"}},
    "free_text_columns": ["notes"],
    "transit_key": "guardflow-airflow-tests",
}
# E-mail addresses may be in ``email``; nothing may be in ``notes``.
SCAN_POLICY: dict[str, Any] = {
    "free_text_columns": ["email", "notes"],
    "allow": {"email": ["EMAIL_ADDRESS"]},
}
_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1, tzinfo=timezone.utc),
    "catchup": False,
    # One retry without delay: try_number shows whether Airflow retried a failed task.
    "default_args": {"retries": 1, "retry_delay": timedelta(0)},
}
INPUT = "{{ dag_run.conf['input_uri'] }}"
OUTPUT = "{{ dag_run.conf['output_uri'] }}"


@task
def after() -> str:
    """Record that the downstream task ran."""
    return "ran"


@dag(dag_id="guardflow_test_pii_mask", **_DAG_ARGS)
def pii_mask_dag() -> None:
    """Mask a file with a policy given as a dict."""
    (
        PIIMaskOperator(task_id="mask_pii", input_uri=INPUT, output_uri=OUTPUT, policy=MASK_POLICY)
        >> after()
    )


pii_mask = pii_mask_dag()


@dag(dag_id="guardflow_test_pii_mask_tokenize", **_DAG_ARGS)
def pii_mask_tokenize_dag() -> None:
    """Tokenize e-mail addresses through Vault transit."""
    PIIMaskOperator(
        task_id="mask_pii",
        input_uri=INPUT,
        output_uri=OUTPUT,
        policy=TOKENIZE_POLICY,
        vault_conn_id=VAULT_CONN_ID,
    )


pii_mask_tokenize = pii_mask_tokenize_dag()


def _scan_dag(on_found: Any) -> Any:
    @dag(dag_id=f"guardflow_test_pii_scan_{on_found}", **_DAG_ARGS)
    def scan_dag() -> None:
        (
            PIIScanOperator(
                task_id="scan_pii", input_uri=INPUT, policy=SCAN_POLICY, on_found=on_found
            )
            >> after()
        )

    return scan_dag()


@dag(dag_id="guardflow_test_pii_workers", **_DAG_ARGS)
def pii_workers_dag() -> None:
    """Mask, then scan the output, with detection on two processes."""
    (
        PIIMaskOperator(
            task_id="mask_pii", input_uri=INPUT, output_uri=OUTPUT, policy=MASK_POLICY, workers=2
        )
        >> PIIScanOperator(
            task_id="scan_pii", input_uri=OUTPUT, policy=SCAN_POLICY, on_found="fail", workers=2
        )
    )


pii_workers = pii_workers_dag()
pii_scan_fail = _scan_dag("fail")
pii_scan_warn = _scan_dag("warn")
