"""run_inference / arun_inference with a bearer token read from a real OpenBao server.

The model server is guardflow's FaultServer, which records request headers, so the test can see
that the token from Vault is the one sent, and then that it reached nothing else: not the run's
logs, artifacts, result, flow parameters or task states.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from pydantic import SecretStr

from guardflow.errors import ConfigurationError, SecretKeyMissingError
from guardflow.testing.model_servers import sample_rows
from guardflow.testing.vault_server import assert_secret_absent
from prefect_guardflow.inference import InferenceEndpoint, arun_inference, run_inference
from prefect_guardflow.vault import VaultCredentials, read_vault_secret

if TYPE_CHECKING:
    from pathlib import Path

    from prefect.states import State

    from guardflow.secrets import VaultConfig
    from guardflow.testing.fault_server import FaultServer
    from guardflow.testing.vault_server import VaultServer


@pytest.fixture
def planted() -> str:
    return f"planted-{uuid.uuid4().hex}"


@pytest.fixture
def credentials(vault_config: VaultConfig) -> VaultCredentials:
    return VaultCredentials.from_config(vault_config)


@pytest.fixture
def token_ref(vault_server: VaultServer, planted: str) -> str:
    """A vault:// reference to the planted inference token."""
    path = f"tests/{uuid.uuid4().hex[:8]}/inference"
    vault_server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret={"token": planted}, mount_point="secret"
    )
    return f"vault://secret/{path}#token"


def _flow_run_id(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def _everything_the_run_left(state: State[Any]) -> list[str]:
    """Logs, artifacts, flow parameters and task states of the run, as text."""
    APILogHandler().flush()
    flow_run_id = _flow_run_id(state)
    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = client.read_artifacts(flow_run_filter=runs)
        parameters = client.read_flow_run(flow_run_id).parameters
        task_runs = client.read_task_runs(flow_run_filter=runs)
    return [
        "\n".join(log.message for log in logs),
        "\n".join(str(a.data) for a in artifacts),
        json.dumps(parameters, default=str),
        "\n".join(f"{r.state.message} {r.state.data}" for r in task_runs),
        str(state.message),
    ]


def test_token_from_a_vault_reference_is_sent_as_bearer_and_nowhere_else(
    fault_server: FaultServer,
    credentials: VaultCredentials,
    token_ref: str,
    planted: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @flow(persist_result=False)
    def score(token: str) -> dict[str, Any]:
        endpoint = InferenceEndpoint(url=fault_server.url, batch_size=5)
        return run_inference(
            sample_rows(10),
            str(tmp_path / "out.parquet"),
            endpoint,
            token=token,
            vault_credentials=credentials,
        )

    state = score(token_ref, return_state=True)

    summary = state.result()
    assert summary["succeeded"] == 10
    headers = [r.headers["authorization"] for r in fault_server.inference_requests]
    assert headers == [f"Bearer {planted}"] * 2
    assert_secret_absent(
        planted, json.dumps(summary), caplog.text, *_everything_the_run_left(state)
    )


def test_vault_token_overrides_the_endpoint_blocks_token(
    fault_server: FaultServer,
    credentials: VaultCredentials,
    token_ref: str,
    planted: str,
    tmp_path: Path,
) -> None:
    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        token = read_vault_secret(token_ref, credentials=credentials)
        endpoint = InferenceEndpoint(url=fault_server.url, token=SecretStr("stale-block-token"))
        return run_inference(sample_rows(3), str(tmp_path / "out.parquet"), endpoint, token=token)

    state = score(return_state=True)

    assert state.is_completed(), state.message
    assert fault_server.inference_requests[0].headers["authorization"] == f"Bearer {planted}"
    assert_secret_absent(planted, *_everything_the_run_left(state))


def test_async_task_resolves_the_reference_from_the_vault_variables(
    fault_server: FaultServer,
    vault_server: VaultServer,
    token_ref: str,
    planted: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAULT_ADDR", vault_server.url)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.create_token(["root"]))

    @flow(persist_result=False)
    async def score() -> dict[str, Any]:
        endpoint = InferenceEndpoint(url=fault_server.url)
        return await arun_inference(
            sample_rows(4), str(tmp_path / "out.jsonl"), endpoint, token=token_ref
        )

    state = asyncio.run(score(return_state=True))

    assert state.is_completed(), state.message
    assert fault_server.inference_requests[0].headers["authorization"] == f"Bearer {planted}"
    assert_secret_absent(planted, *_everything_the_run_left(state))


def test_a_literal_token_argument_is_sent_and_masked_in_logs(
    fault_server: FaultServer, planted: str, tmp_path: Path
) -> None:
    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        from prefect import get_run_logger

        endpoint = InferenceEndpoint(url=fault_server.url)
        summary = run_inference(
            sample_rows(2), str(tmp_path / "out.parquet"), endpoint, token=planted
        )
        get_run_logger().info("used %s", planted)  # careless: the literal is masked too
        return summary

    state = score(return_state=True)

    assert fault_server.inference_requests[0].headers["authorization"] == f"Bearer {planted}"
    logs = _everything_the_run_left(state)[0]
    assert "used **********" in logs
    assert_secret_absent(planted, logs)


def test_a_reference_without_a_key_fails_before_any_request(
    fault_server: FaultServer,
    credentials: VaultCredentials,
    token_ref: str,
    planted: str,
    tmp_path: Path,
) -> None:
    whole_secret = token_ref.partition("#")[0]

    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        endpoint = InferenceEndpoint(url=fault_server.url)
        return run_inference(
            sample_rows(2),
            str(tmp_path / "out.parquet"),
            endpoint,
            token=whole_secret,
            vault_credentials=credentials,
        )

    state = score(return_state=True)

    assert state.is_failed()
    with pytest.raises(ConfigurationError, match="add the key"):
        state.result()
    assert fault_server.requests == []
    assert_secret_absent(planted, *_everything_the_run_left(state))


def test_a_reference_to_a_missing_key_fails_with_the_vault_error(
    fault_server: FaultServer,
    credentials: VaultCredentials,
    token_ref: str,
    planted: str,
    tmp_path: Path,
) -> None:
    @flow(persist_result=False)
    def score() -> dict[str, Any]:
        endpoint = InferenceEndpoint(url=fault_server.url)
        return run_inference(
            sample_rows(2),
            str(tmp_path / "out.parquet"),
            endpoint,
            token=token_ref.replace("#token", "#api_key"),
            vault_credentials=credentials,
        )

    state = score(return_state=True)

    with pytest.raises(SecretKeyMissingError, match="'api_key'"):
        state.result()
    assert fault_server.requests == []
    assert_secret_absent(planted, *_everything_the_run_left(state))
