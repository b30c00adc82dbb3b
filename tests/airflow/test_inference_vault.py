"""The inference token comes from Vault, run by Airflow itself (``dag.test()``) on real servers.

OpenBao (the ``vault_server`` fixture) holds the token; the local fault server plays the model
server and records each request's headers, so a test sees the exact ``Authorization`` header that
went out. After each run the planted values are looked for everywhere a task could leave them:
the console (the task log of ``dag.test()``), captured log records, every file under
AIRFLOW_HOME (task logs, the metadata database with XCom, rendered fields and serialized DAGs,
the audit trail), XCom and the rendered template fields read back through Airflow.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guardflow.testing.vault_server import assert_secret_absent

DAGS = Path(__file__).resolve().parent / "dags" / "vault_dags.py"
VAULT_CONN_ENV = "AIRFLOW_CONN_GUARDFLOW_TEST_VAULT"
INFERENCE_CONN_ENV = "AIRFLOW_CONN_GUARDFLOW_TEST_VAULT_INFERENCE"
SECRET_API = "secret/data/guardflow-tests/model"
READ_POLICY = 'path "secret/data/guardflow-tests/*" { capabilities = ["read"] }'

pytestmark = pytest.mark.timeout(300)


def _plant(vault_server: Any, **data: str) -> None:
    vault_server.request("POST", SECRET_API, json={"data": data})


def _vault_uri(vault_server: Any, token: str) -> str:
    """The hashicorp provider's URI form: token in the password, KV mount as the path."""
    return f"vault://:{token}@127.0.0.1:{vault_server.port}/secret?auth_type=token"


@pytest.fixture
def planted(vault_server: Any) -> str:
    """A fresh bearer token stored at ``secret/guardflow-tests/model#token``."""
    vault_server.ensure_ready()
    value = f"gf-vault-token-{uuid.uuid4().hex}"
    _plant(vault_server, token=value)
    return value


@pytest.fixture
def vault_conn(vault_server: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Return ``use(policies=("root",))``: point the Vault connection at a new token."""

    def use(policies: tuple[str, ...] = ("root",)) -> None:
        # A new token per test also keeps reads apart in the process-wide secret cache.
        token = vault_server.create_token(list(policies), ttl="1h")
        monkeypatch.setenv(VAULT_CONN_ENV, _vault_uri(vault_server, token))

    use()
    return use


@pytest.fixture
def model_server(fault_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fault server as the model server, through both inference connections."""
    default = {"conn_type": "guardflow_inference", "host": fault_server.url}
    by_ref = {**default, "password": "vault://secret/guardflow-tests/model#token"}
    monkeypatch.setenv("AIRFLOW_CONN_GUARDFLOW_INFERENCE_DEFAULT", json.dumps(default))
    monkeypatch.setenv(INFERENCE_CONN_ENV, json.dumps(by_ref))
    return fault_server


@pytest.fixture
def run_dag(load_dag: Callable[[Path, str], Any], tmp_path: Path) -> Callable[[str], Any]:
    """Return ``run(dag_id) -> dag_run`` scoring 20 rows into ``tmp_path``."""
    source = tmp_path / "input.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["row_id", "f0", "f1"])
        writer.writeheader()
        writer.writerows({"row_id": f"r{i}", "f0": i, "f1": 2 * i} for i in range(20))

    def run(dag_id: str) -> Any:
        conf = {"input_uri": str(source), "output_uri": str(tmp_path / "scores.parquet")}
        return load_dag(DAGS, dag_id).test(run_conf=conf)

    return run


@pytest.fixture
def leftovers(
    airflow_home: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Callable[[Any], list[Any]]]:
    """Return ``collect(dag_run)``: everything a run left that a secret must not be in."""

    def collect(dag_run: Any) -> list[Any]:
        from airflow.models.renderedtifields import RenderedTaskInstanceFields
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            tis = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
                )
            ).all()
            xcom = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id, session=session) for ti in tis}
            rendered = session.scalars(
                select(RenderedTaskInstanceFields.rendered_fields).where(
                    RenderedTaskInstanceFields.dag_id == dag_run.dag_id,
                    RenderedTaskInstanceFields.run_id == dag_run.run_id,
                )
            ).all()
        files = {
            str(p): p.read_bytes().decode("utf-8", "replace")
            for p in airflow_home.rglob("*")
            if p.is_file()
        }
        assert files, "nothing under AIRFLOW_HOME to look at"
        console = "".join(capfd.readouterr())
        return [console, caplog.text, xcom, rendered, files]

    yield collect


def test_token_from_vault_reaches_the_model_server(
    planted: str, vault_conn: Callable[..., None], model_server: Any, run_dag: Any, run_summary: Any
) -> None:
    dag_run = run_dag("guardflow_test_vault_token")

    result = run_summary(dag_run)
    assert result.tasks["score"] == ("success", 1)
    requests = model_server.inference_requests
    assert requests
    assert {r.headers.get("authorization") for r in requests} == {f"Bearer {planted}"}


def test_connection_password_reference_is_resolved_through_vault(
    planted: str, vault_conn: Callable[..., None], model_server: Any, run_dag: Any, run_summary: Any
) -> None:
    dag_run = run_dag("guardflow_test_vault_conn_password")

    assert run_summary(dag_run).tasks["score"] == ("success", 1)
    headers = {r.headers.get("authorization") for r in model_server.inference_requests}
    assert headers == {f"Bearer {planted}"}


def test_literal_token_is_sent_and_kept_out_of_xcom_and_rendered_fields(
    model_server: Any,
    load_dag: Callable[[Path, str], Any],
    run_dag: Any,
    leftovers: Callable[[Any], list[Any]],
) -> None:
    literal = load_dag(DAGS, "guardflow_test_vault_literal_token").get_task("score").token

    dag_run = run_dag("guardflow_test_vault_literal_token")

    _, _, xcom, rendered, _ = leftovers(dag_run)
    headers = {r.headers.get("authorization") for r in model_server.inference_requests}
    assert headers == {f"Bearer {literal}"}
    assert xcom["score"]["succeeded"] == 20
    assert_secret_absent(literal, xcom, rendered)


def test_token_is_neither_templated_nor_serialized_with_the_dag() -> None:
    from datetime import datetime, timezone

    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    from guardflow_airflow.operators.inference import InferenceOperator

    literal = f"gf-literal-{uuid.uuid4().hex}"
    with DAG("gf_serialize", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)):
        op = InferenceOperator(
            task_id="s", input_uri="in.csv", output_uri="o.parquet", token=literal
        )

    assert "token" not in op.template_fields
    assert_secret_absent(literal, json.dumps(DagSerialization.to_dict(op.dag), default=str))


def test_token_reaches_no_log_xcom_rendered_field_or_file(
    planted: str,
    vault_conn: Callable[..., None],
    model_server: Any,
    run_dag: Any,
    leftovers: Callable[[Any], list[Any]],
) -> None:
    dag_run = run_dag("guardflow_test_vault_token")

    console, log_text, xcom, rendered, files = leftovers(dag_run)
    assert "Scoring" in console  # the task log was captured
    assert xcom["score"]["succeeded"] == 20  # XCom was read back
    assert any("input_uri" in fields for fields in rendered)  # rendered fields were stored
    assert_secret_absent(planted, console, log_text, xcom, rendered, *files.values())


def test_connection_password_path_leaks_nothing(
    planted: str,
    vault_conn: Callable[..., None],
    model_server: Any,
    run_dag: Any,
    leftovers: Callable[[Any], list[Any]],
) -> None:
    dag_run = run_dag("guardflow_test_vault_conn_password")

    console, log_text, xcom, rendered, files = leftovers(dag_run)
    assert xcom["score"]["succeeded"] == 20
    assert_secret_absent(planted, console, log_text, xcom, rendered, *files.values())


def test_hook_in_a_task_registers_the_value_with_the_masker(
    planted: str,
    vault_conn: Callable[..., None],
    run_dag: Any,
    leftovers: Callable[[Any], list[Any]],
) -> None:
    dag_run = run_dag("guardflow_test_vault_hook")

    console, log_text, xcom, rendered, files = leftovers(dag_run)
    assert xcom["read_secret"] == {"printed": "**********", "redacted": "token=***"}
    assert_secret_absent(planted, console, log_text, xcom, rendered, *files.values())


def test_missing_key_fails_the_task_at_once_naming_the_key(
    vault_server: Any,
    vault_conn: Callable[..., None],
    model_server: Any,
    run_dag: Any,
    run_summary: Any,
    leftovers: Callable[[Any], list[Any]],
) -> None:
    other = f"gf-other-value-{uuid.uuid4().hex}"
    _plant(vault_server, api_key=other)

    dag_run = run_dag("guardflow_test_vault_token")

    assert run_summary(dag_run).tasks["score"] == ("failed", 1)
    console, *rest = leftovers(dag_run)
    assert "SecretKeyMissingError" in console
    assert "'token'" in console and "api_key" in console  # the key asked for, the keys there
    assert not model_server.inference_requests
    assert_secret_absent(other, console, *rest)


def test_missing_path_fails_the_task_at_once(
    vault_server: Any,
    vault_conn: Callable[..., None],
    model_server: Any,
    run_dag: Any,
    run_summary: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    vault_server.request("DELETE", "secret/metadata/guardflow-tests/model")

    dag_run = run_dag("guardflow_test_vault_token")

    assert run_summary(dag_run).tasks["score"] == ("failed", 1)
    console = "".join(capfd.readouterr())
    assert "SecretNotFoundError" in console
    assert "guardflow-tests/model" in console
    assert not model_server.inference_requests


def test_permission_denied_fails_the_task_at_once(
    planted: str,
    vault_server: Any,
    vault_conn: Callable[..., None],
    model_server: Any,
    run_dag: Any,
    run_summary: Any,
    leftovers: Callable[[Any], list[Any]],
) -> None:
    vault_conn(policies=("default",))  # a valid token that may not read the path

    dag_run = run_dag("guardflow_test_vault_token")

    assert run_summary(dag_run).tasks["score"] == ("failed", 1)
    console, *rest = leftovers(dag_run)
    assert "VaultPermissionError" in console
    assert "secret/data/guardflow-tests/model" in console
    assert not model_server.inference_requests
    assert_secret_absent(planted, console, *rest)


def test_a_narrow_policy_is_enough(
    planted: str,
    vault_server: Any,
    vault_conn: Callable[..., None],
    model_server: Any,
    run_dag: Any,
    run_summary: Any,
) -> None:
    vault_server.write_policy("guardflow-tests-read", READ_POLICY)
    vault_conn(policies=("guardflow-tests-read",))

    dag_run = run_dag("guardflow_test_vault_token")

    assert run_summary(dag_run).tasks["score"] == ("success", 1)
    headers = {r.headers.get("authorization") for r in model_server.inference_requests}
    assert headers == {f"Bearer {planted}"}


def test_unreachable_vault_is_retried_by_airflow(
    monkeypatch: pytest.MonkeyPatch,
    unused_tcp_port: int,
    model_server: Any,
    run_dag: Any,
    run_summary: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(VAULT_CONN_ENV, f"vault://:some-token@127.0.0.1:{unused_tcp_port}/secret")

    dag_run = run_dag("guardflow_test_vault_token")

    assert run_summary(dag_run).tasks["score"] == ("failed", 2)
    assert "VaultUnreachableError" in "".join(capfd.readouterr())
    assert not model_server.inference_requests


def test_sealed_vault_is_retried_by_airflow(
    planted: str,
    vault_server: Any,
    vault_conn: Callable[..., None],
    model_server: Any,
    run_dag: Any,
    run_summary: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    vault_server.seal()
    try:
        dag_run = run_dag("guardflow_test_vault_token")
    finally:
        vault_server.unseal()

    assert run_summary(dag_run).tasks["score"] == ("failed", 2)
    assert "VaultSealedError" in "".join(capfd.readouterr())
    assert not model_server.inference_requests
