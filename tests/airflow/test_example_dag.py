"""The reference workflow (example_dags/airflow/guardflow_reference.py) runs end to end.

It is run the two ways users run it: ``dag.test()`` from Python, and ``python <file>`` (what
``make demo`` does), against real servers: MLflow's scoring server where predictions are checked,
guardflow's FaultServer where the request headers are (the bearer token), and a real OpenBao dev
server holding the inference token, reached through a hashicorp-format ``vault_default``
connection with a token that may only read that path. The approval gate is decided by
``gate_decider`` (guardflow's stand-in reviewer) on a fresh gate store per test.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guardflow.samples import DRIFTED_FEATURES
from guardflow.testing.model_servers import expected_prediction
from guardflow.testing.vault_server import assert_secret_absent

if TYPE_CHECKING:
    from guardflow.testing.fault_server import FaultServer
    from guardflow.testing.gate_decider import GateDecider
    from guardflow.testing.vault_server import VaultServer

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "example_dags" / "airflow" / "guardflow_reference.py"
DAG_ID = "guardflow_reference"
PLANTED_TOKEN = "gf-planted-token-7f3c9a1e5b"
# Explicit in every run: dag.test() in one process reuses the task objects, and a conf value
# given to an earlier run would otherwise stay in their params.
NO_DRIFT = {"simulate_drift": False}
READ_POLICY = 'path "secret/data/guardflow/*" { capabilities = ["read"] }'

pytestmark = [
    pytest.mark.timeout(300),
    # Raised while great_expectations imports (warnings are errors in the Airflow tests).
    pytest.mark.filterwarnings("ignore:module 'sre_(constants|parse)' is deprecated"),
]


@dataclass(frozen=True)
class VaultSecrets:
    """The inference token stored in Vault, and the Vault token the connection carries."""

    inference_token: str
    vault_token: str


@pytest.fixture
def vault_conn(vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch) -> VaultSecrets:
    """Store a fresh inference token in OpenBao; point ``vault_default`` at it (read-only)."""
    inference_token = f"inference-{secrets.token_hex(8)}"
    vault_server.request(
        "POST", "secret/data/guardflow/inference", json={"data": {"token": inference_token}}
    )
    vault_server.request(
        "POST", "secret/data/guardflow/pii", json={"data": {"hash_key": secrets.token_hex(16)}}
    )
    vault_server.request(
        "POST",
        "secret/data/guardflow/gates",
        json={"data": {"signing_key": secrets.token_urlsafe(48)}},
    )
    vault_server.write_policy("guardflow-inference-read", READ_POLICY)
    vault_token = vault_server.create_token(["guardflow-inference-read"])
    host, port = vault_server.url.removeprefix("http://").split(":")
    conn = {
        "conn_type": "vault",  # apache-airflow-providers-hashicorp's type, as users have it
        "host": host,
        "port": int(port),
        "password": vault_token,
        "extra": {"auth_type": "token", "kv_engine_version": 2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_VAULT_DEFAULT", json.dumps(conn))
    return VaultSecrets(inference_token=inference_token, vault_token=vault_token)


@pytest.fixture
def reference_dag(load_dag: Callable[[Path, str], Any]) -> Any:
    return load_dag(DAG_FILE, DAG_ID)


def test_reference_dag_masks_pii_then_checks_quality_and_drift_before_score(
    reference_dag: Any,
) -> None:
    order = {t.task_id: sorted(t.downstream_task_ids) for t in reference_dag.tasks}

    assert order == {
        "ingest": ["check_drift", "check_quality", "label_predictions", "mask_pii", "score"],
        "mask_pii": ["check_drift", "check_quality"],
        "check_quality": ["score"],
        "check_drift": ["alert_drift", "score"],
        "alert_drift": [],
        "score": ["deliver", "label_predictions"],
        "label_predictions": ["review"],
        "review": ["deliver", "quarantine"],
        "deliver": [],
        "quarantine": [],
    }


def test_undrifted_sample_is_checked_scored_reviewed_and_delivered(
    inference_conn: str,
    vault_conn: VaultSecrets,
    reference_dag: Any,
    run_summary: Any,
    airflow_home: Path,
    gate_decider: Callable[..., GateDecider],
) -> None:
    import pyarrow.parquet as pq

    from guardflow.gates import GateStore

    decider = gate_decider("approve", comment="labels look right")

    result = run_summary(reference_dag.test(run_conf=NO_DRIFT))

    assert result.state == "success"
    assert result.tasks["review"][0] == "success"
    assert result.tasks["quarantine"][0] == "skipped"
    (gate_id,) = decider.decided
    outcome = result.xcom[("review", "gate_outcome")]
    assert (outcome["gate_id"], outcome["outcome"], outcome["approved"]) == (
        gate_id,
        "approve",
        True,
    )
    # Only the uncertain predictions went to a human; the confident ones passed.
    record = GateStore(os.environ["GUARDFLOW_GATES_DB"]).get(gate_id)
    assert 0 < record.item_count < 250
    assert record.item_count + record.passed_count == 250
    assert record.votes[0].reviewer == "ana"  # an assignee of the policy's reviewers group
    assert result.tasks["alert_drift"][0] == "skipped"
    pii = result.xcom[("mask_pii", "return_value")]
    assert pii["counts"]["email"]["EMAIL_ADDRESS"] == 250
    assert pii["counts"]["note"]["CREDIT_CARD"] > 0
    files = result.xcom[("ingest", "return_value")]
    landed = Path(files["landed_uri"]).read_text()
    masked = Path(files["input_uri"]).read_text()
    assert "customer00000@example.com" in landed
    assert "@" not in masked  # every address, in the email column and in the notes, is gone
    assert "4111 1111 1111 1111" not in masked and "4111 1111 1111 1111" not in json.dumps(pii)
    assert result.xcom[("check_quality", "return_value")]["success"] is True
    assert result.xcom[("check_drift", "drift_summary")]["dataset_drift"] is False
    summary = result.xcom[("score", "return_value")]
    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (250, 250, 0)
    assert result.xcom[("deliver", "return_value")] == summary
    output = Path(summary["output_uri"])
    assert output.is_relative_to(airflow_home / "demo")
    rows = pq.read_table(output).to_pylist()
    assert len({r["row_id"] for r in rows}) == 250
    assert all(r["prediction"] == pytest.approx(expected_prediction(r)) for r in rows)


def test_rejected_review_quarantines_and_delivers_nothing(
    inference_conn: str,
    vault_conn: VaultSecrets,
    reference_dag: Any,
    run_summary: Any,
    gate_decider: Callable[..., GateDecider],
) -> None:
    decider = gate_decider("reject")

    result = run_summary(reference_dag.test(run_conf=NO_DRIFT))

    assert result.state == "success"
    assert len(decider.decided) == 1
    assert result.tasks["score"][0] == "success"
    assert result.tasks["quarantine"][0] == "success"
    assert result.tasks["deliver"][0] == "skipped"
    assert result.xcom[("quarantine", "return_value")]["outcome"] == "reject"


def test_drifted_sample_takes_the_alert_branch_and_scores_nothing(
    set_inference_conn: Callable[..., None],
    fault_server: FaultServer,
    vault_conn: VaultSecrets,
    reference_dag: Any,
    run_summary: Any,
) -> None:
    set_inference_conn(fault_server.url)

    result = run_summary(reference_dag.test(run_conf={"simulate_drift": True}))

    assert result.state == "success"
    assert result.tasks["check_quality"][0] == "success"  # drifted, yet every value valid
    assert result.tasks["alert_drift"][0] == "success"
    assert result.tasks["score"][0] == "skipped"
    assert result.tasks["review"][0] == "skipped"
    assert result.tasks["deliver"][0] == "skipped"
    alert = result.xcom[("alert_drift", "return_value")]
    assert alert["drifted_columns"] == list(DRIFTED_FEATURES)
    assert fault_server.inference_requests == []


def test_score_sends_the_token_read_from_vault(
    set_inference_conn: Callable[..., None],
    fault_server: FaultServer,
    vault_conn: VaultSecrets,
    reference_dag: Any,
    run_summary: Any,
    airflow_db: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    gate_decider: Callable[..., GateDecider],
) -> None:
    # The inference connection carries another token: the one from Vault must win.
    set_inference_conn(fault_server.url)
    gate_decider("approve")

    result = run_summary(reference_dag.test(run_conf=NO_DRIFT))

    assert result.tasks["score"][0] == "success"
    headers = {r.headers.get("authorization") for r in fault_server.inference_requests}
    assert headers == {f"Bearer {vault_conn.inference_token}"}
    console = "".join(capfd.readouterr())
    for secret in (vault_conn.inference_token, vault_conn.vault_token, PLANTED_TOKEN):
        assert_secret_absent(secret, console, caplog.text, result.xcom)
    assert vault_conn.inference_token.encode() not in airflow_db.read_bytes()


def test_reference_dag_file_runs_as_a_script(
    inference_conn: str,
    vault_conn: VaultSecrets,
    airflow_db: Path,
    gate_decider: Callable[..., GateDecider],
) -> None:
    decider = gate_decider(
        "approve"
    )  # the script's gate store is this test's ($GUARDFLOW_GATES_DB)

    proc = subprocess.run(
        [sys.executable, str(DAG_FILE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=os.environ.copy(),
    )

    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Results: 250 of 250 rows scored" in log
    assert "Drift branch taken: score" in log
    assert "Review gate branch taken: deliver" in log
    assert len(decider.decided) == 1
    assert "state=success" in log
    for secret in (vault_conn.inference_token, vault_conn.vault_token, PLANTED_TOKEN):
        assert_secret_absent(secret, log)
