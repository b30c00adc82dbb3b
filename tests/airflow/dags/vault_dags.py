"""DAGs for the Vault tests (tests/airflow/test_inference_vault.py); they exist only for tests.

Every DAG reads through the Vault connection ``guardflow_test_vault``, which each test points at
the session's OpenBao server with the credentials it wants (a token whose policy denies the path,
say). The secret lives at ``secret/guardflow-tests/model`` (KV v2); tests write, change or delete
it before each run. One retry with no delay, so ``try_number`` tells whether Airflow retried.

- ``guardflow_test_vault_token``: InferenceOperator with ``token=`` a ``vault://`` reference.
- ``guardflow_test_vault_conn_password``: InferenceOperator whose inference connection
  (``guardflow_test_vault_inference``) holds the reference as its password.
- ``guardflow_test_vault_literal_token``: InferenceOperator with a literal ``token=``.
- ``guardflow_test_vault_hook``: a task reading the secret with VaultHook; it returns what the
  secrets masker makes of the value, never the value.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import dag, task

from guardflow_airflow.operators.inference import InferenceOperator

VAULT_CONN_ID = "guardflow_test_vault"
INFERENCE_CONN_ID = "guardflow_test_vault_inference"
SECRET_PATH = "guardflow-tests/model"
TOKEN_REF = f"vault://secret/{SECRET_PATH}#token"
LITERAL_TOKEN = "gf-literal-token-5d2e8b"
FAST_RETRY = {"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.05, "max_total_seconds": 20}
_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2025, 1, 1, tzinfo=timezone.utc),
    "catchup": False,
    "default_args": {"retries": 1, "retry_delay": timedelta(0)},
}


def _score(**kwargs: Any) -> InferenceOperator:
    return InferenceOperator(
        task_id="score",
        input_uri="{{ dag_run.conf['input_uri'] }}",
        output_uri="{{ dag_run.conf['output_uri'] }}",
        key_column="row_id",
        batch_size=10,
        request_retry=FAST_RETRY,
        vault_conn_id=VAULT_CONN_ID,
        **kwargs,
    )


@dag(dag_id="guardflow_test_vault_token", **_DAG_ARGS)
def guardflow_test_vault_token() -> None:
    """Score with the bearer token read from Vault through ``token=``."""
    _score(token=TOKEN_REF)


@dag(dag_id="guardflow_test_vault_conn_password", **_DAG_ARGS)
def guardflow_test_vault_conn_password() -> None:
    """Score through a connection whose password is a ``vault://`` reference."""
    _score(guardflow_conn_id=INFERENCE_CONN_ID)


@dag(dag_id="guardflow_test_vault_literal_token", **_DAG_ARGS)
def guardflow_test_vault_literal_token() -> None:
    """Score with a literal token (no Vault involved)."""
    _score(token=LITERAL_TOKEN)


@dag(dag_id="guardflow_test_vault_hook", **_DAG_ARGS)
def guardflow_test_vault_hook() -> None:
    """Read the secret with VaultHook inside a task."""

    @task
    def read_secret() -> dict[str, Any]:
        from airflow.sdk.log import redact

        from guardflow_airflow.hooks.vault import VaultHook

        hook = VaultHook(vault_conn_id=VAULT_CONN_ID)
        try:
            value = hook.get_secret(SECRET_PATH, "token")
        finally:
            hook.close()
        return {"printed": str(value), "redacted": redact(f"token={value.reveal()}")}

    read_secret()


token_dag = guardflow_test_vault_token()
conn_password_dag = guardflow_test_vault_conn_password()
literal_token_dag = guardflow_test_vault_literal_token()
hook_dag = guardflow_test_vault_hook()
