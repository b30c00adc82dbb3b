"""The Prefect reference workflow (example_dags/prefect) against real servers.

MLflow's scoring server where predictions are checked, guardflow's FaultServer where the request
headers are (the bearer token), and a real OpenBao dev server holding the inference token, read
with a Vault token that may only read that path (``VAULT_ADDR`` / ``VAULT_TOKEN``, or a saved
``VaultCredentials`` block). The review gate is decided by ``gate_decider`` (guardflow's stand-in
reviewer) on a fresh gate store per test.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect.states import State
from pydantic import SecretStr

from guardflow.samples import DRIFTED_FEATURES
from guardflow.testing.model_servers import expected_prediction
from guardflow.testing.vault_server import assert_secret_absent
from prefect_guardflow.inference import InferenceEndpoint
from prefect_guardflow.vault import VaultCredentials

if TYPE_CHECKING:
    from conftest import PrefectServer

    from guardflow.testing.fault_server import FaultServer
    from guardflow.testing.gate_decider import GateDecider
    from guardflow.testing.model_servers import MLflowModelServer
    from guardflow.testing.vault_server import VaultServer

FLOW_FILE = (
    Path(__file__).resolve().parents[2] / "example_dags" / "prefect" / "guardflow_reference.py"
)
READ_POLICY = 'path "secret/data/guardflow/*" { capabilities = ["read"] }'


@dataclass(frozen=True)
class VaultSecrets:
    """The inference token stored in Vault, and the Vault token the flow logs in with."""

    inference_token: str
    vault_token: str


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("guardflow_reference_prefect", FLOW_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def vault_env(vault_server: VaultServer, monkeypatch: pytest.MonkeyPatch) -> VaultSecrets:
    """Store a fresh inference token in OpenBao; export VAULT_ADDR and a read-only VAULT_TOKEN."""
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
    for name in ("VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_NAMESPACE", "GUARDFLOW_VAULT_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAULT_ADDR", vault_server.url)
    monkeypatch.setenv("VAULT_TOKEN", vault_token)
    return VaultSecrets(inference_token=inference_token, vault_token=vault_token)


@pytest.fixture
def demo_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mlflow_model_server: MLflowModelServer,
    vault_env: VaultSecrets,
) -> Path:
    monkeypatch.setenv("GUARDFLOW_DEMO_DIR", str(tmp_path))
    monkeypatch.setenv("GUARDFLOW_ENDPOINT_URL", mlflow_model_server.url)
    monkeypatch.delenv("GUARDFLOW_ENDPOINT_BLOCK", raising=False)
    return tmp_path


# -- reading a flow run back from the Prefect API ----------------------------------------------


def _flow_run_id(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def _task_names(flow_run_id: UUID) -> set[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {r.name.rsplit("-", 1)[0] for r in runs}


def _logs(flow_run_id: UUID) -> str:
    APILogHandler().flush()  # logs travel to the API in the background: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return "\n".join(log.message for log in logs)


# -- the two branches ------------------------------------------------------------------------------


def test_undrifted_sample_is_checked_and_every_row_scored(
    reference: ModuleType,
    demo_env: Path,
    gate_decider: Callable[..., GateDecider],
) -> None:
    decider = gate_decider("approve")
    state = reference.guardflow_reference(return_state=True)

    outcome = state.result()
    assert outcome["branch"] == "score"
    assert outcome["review_branch"] == "deliver"
    (gate_id,) = decider.decided
    assert outcome["review"]["gate_id"] == gate_id and outcome["review"]["approved"] is True
    # Only the uncertain predictions went to a human; the confident ones passed.
    assert 0 < outcome["review"]["items_reviewed"] < 250
    assert outcome["review"]["items_reviewed"] + outcome["review"]["items_passed"] == 250
    assert outcome["quality"]["success"] is True
    assert outcome["drift"]["dataset_drift"] is False
    summary = outcome["scoring"]
    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (250, 250, 0)
    output = Path(summary["output_uri"])
    assert output.is_relative_to(demo_env / "prefect")
    with (output.parent / "input.csv").open(newline="") as fh:
        ingested = list(csv.DictReader(fh))
    scored = pq.read_table(output).to_pylist()
    assert [r["row_id"] for r in scored] == [r["row_id"] for r in ingested]
    for row in scored:
        assert row["prediction"] == pytest.approx(expected_prediction(row))
    tasks = _task_names(_flow_run_id(state))
    assert "alert_drift" not in tasks
    assert "mask_pii" in tasks
    # the landed file keeps the personal data; the masked copy every later step read has none
    assert "customer00000@example.com" in (output.parent / "landed.csv").read_text()
    masked = (output.parent / "input.csv").read_text()
    assert "@" not in masked and "4111 1111 1111 1111" not in masked


def test_rejected_review_quarantines_and_delivers_nothing(
    reference: ModuleType, demo_env: Path, gate_decider: Callable[..., GateDecider]
) -> None:
    decider = gate_decider("reject")

    state = reference.guardflow_reference(return_state=True)

    outcome = state.result()
    assert len(decider.decided) == 1
    assert (outcome["review_branch"], outcome["scoring"]) == ("quarantine", None)
    assert outcome["review"]["outcome"] == "reject"
    tasks = _task_names(_flow_run_id(state))
    assert "quarantine" in tasks and "deliver" not in tasks


def test_drifted_sample_takes_the_alert_branch_and_scores_nothing(
    reference: ModuleType,
    demo_env: Path,
    fault_server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUARDFLOW_ENDPOINT_URL", fault_server.url)

    state = reference.guardflow_reference(simulate_drift=True, return_state=True)

    outcome = state.result()
    assert outcome["branch"] == "alert_drift"
    assert outcome["quality"]["success"] is True  # drifted, yet every value valid
    drifted = [c["column"] for c in outcome["drift"]["columns"] if c["drifted"]]
    assert drifted == list(DRIFTED_FEATURES)
    assert outcome["scoring"] is None
    assert fault_server.inference_requests == []
    tasks = _task_names(_flow_run_id(state))
    assert "alert_drift" in tasks
    assert not tasks & {"read_vault_secret", "run_inference", "deliver"}
    assert "ALERT: input drifted from the reference in f0, f1, f2" in _logs(_flow_run_id(state))


# -- the token from Vault --------------------------------------------------------------------------


def test_the_model_server_receives_the_token_read_from_vault(
    reference: ModuleType,
    demo_env: Path,
    vault_env: VaultSecrets,
    fault_server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    gate_decider: Callable[..., GateDecider],
) -> None:
    gate_decider("approve")
    monkeypatch.setenv("GUARDFLOW_ENDPOINT_URL", fault_server.url)

    state = reference.guardflow_reference(return_state=True)

    assert state.result()["scoring"]["succeeded"] == 250
    headers = {r.headers.get("authorization") for r in fault_server.inference_requests}
    assert headers == {f"Bearer {vault_env.inference_token}"}
    seen = (_logs(_flow_run_id(state)), state.result())
    for secret in (vault_env.inference_token, vault_env.vault_token):
        assert_secret_absent(secret, *seen)


def test_a_saved_vault_block_is_used_when_named(
    reference: ModuleType,
    demo_env: Path,
    vault_env: VaultSecrets,
    vault_server: VaultServer,
    fault_server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    gate_decider: Callable[..., GateDecider],
) -> None:
    gate_decider("approve")
    name = f"reference-vault-{uuid.uuid4().hex[:8]}"
    VaultCredentials(url=vault_server.url, token=SecretStr(vault_env.vault_token)).save(name)
    # The environment points nowhere: only the block can make this run succeed.
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("GUARDFLOW_ENDPOINT_URL", fault_server.url)

    outcome = reference.guardflow_reference(vault_block=name)

    assert outcome["scoring"]["succeeded"] == 250
    assert (
        fault_server.inference_requests[0]
        .headers["authorization"]
        .endswith(vault_env.inference_token)
    )


def test_a_saved_endpoint_block_is_used_when_named(
    reference: ModuleType,
    demo_env: Path,
    mlflow_model_server: MLflowModelServer,
    monkeypatch: pytest.MonkeyPatch,
    gate_decider: Callable[..., GateDecider],
) -> None:
    gate_decider("approve")
    name = f"reference-{uuid.uuid4().hex[:8]}"
    InferenceEndpoint(url=mlflow_model_server.url, batch_size=100).save(name)
    # The environment points elsewhere: only the block can make this run succeed.
    monkeypatch.setenv("GUARDFLOW_ENDPOINT_URL", "http://127.0.0.1:9")

    outcome = reference.guardflow_reference(endpoint_block=name)

    assert outcome["scoring"]["succeeded"] == 250
    assert outcome["scoring"]["batches"] == 3  # the block's batch size (100), not the default


def test_reference_flow_runs_as_a_script_and_prints_where_results_went(
    prefect_server: PrefectServer,
    demo_env: Path,
    vault_env: VaultSecrets,
    gate_decider: Callable[..., GateDecider],
) -> None:
    decider = gate_decider("approve")
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}

    done = subprocess.run(
        [sys.executable, str(FLOW_FILE)], env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert "Drift branch taken: score" in lines
    assert "Review gate branch taken: deliver" in lines
    assert len(decider.decided) == 1
    assert lines[-1].startswith("Scored 250 of 250 rows -> ")
    assert Path(lines[-1].rsplit(" -> ", 1)[1]).is_file()
    for secret in (vault_env.inference_token, vault_env.vault_token):
        assert_secret_absent(secret, done.stdout + done.stderr)
