"""Values read through guardflow are masked in a run's logs, even after a careless reveal().

Prefect redacts only its own API key. These tests plant a value in a real OpenBao server, read it
in a flow on the real Prefect server, log it in clear the way a careless user would, and read the
logs back from the server (what the UI shows), from Prefect's console handler, and from caplog.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler, PrefectConsoleHandler
from pydantic import SecretStr

from guardflow.testing.vault_server import assert_secret_absent
from prefect_guardflow._redaction import (
    MASK,
    SecretMaskingFilter,
    install_log_masking,
    mask_secrets,
    register_secret,
)
from prefect_guardflow._runtime import send_core_logs_to_prefect
from prefect_guardflow.vault import VaultCredentials, aread_vault_secret, read_vault_secret

if TYPE_CHECKING:
    from prefect.states import State

    from guardflow.secrets import VaultConfig
    from guardflow.testing.vault_server import VaultServer


@pytest.fixture
def planted() -> str:
    return f"planted-{uuid.uuid4().hex}"


@pytest.fixture
def credentials(vault_config: VaultConfig) -> VaultCredentials:
    return VaultCredentials.from_config(vault_config)


@pytest.fixture
def path(vault_server: VaultServer, planted: str) -> str:
    path = f"tests/{uuid.uuid4().hex[:8]}/endpoint"
    vault_server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret={"token": planted}, mount_point="secret"
    )
    return path


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What Prefect's own console handler (on the root logger) prints during the test."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    assert handlers, "Prefect's console handler is not on the root logger"
    buffer = io.StringIO()
    saved = [(h, h.stream, h.console.file) for h in handlers]
    for handler in handlers:
        handler.stream = buffer
        handler.console.file = buffer
    try:
        yield buffer
    finally:
        for handler, stream, file in saved:
            handler.stream = stream
            handler.console.file = file


def _api_logs(state: State[Any]) -> str:
    flow_run_id: UUID | None = state.state_details.flow_run_id
    assert flow_run_id is not None
    APILogHandler().flush()  # logs travel to the API in the background: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return "\n".join(log.message for log in logs)


# -- a careless flow, on the real servers -------------------------------------------------------


def test_a_revealed_value_logged_by_the_flow_reaches_api_console_and_caplog_masked(
    credentials: VaultCredentials,
    path: str,
    planted: str,
    console: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @flow(persist_result=False)
    def careless() -> None:
        value = read_vault_secret(path, "token", credentials=credentials)
        get_run_logger().info("token=%s", value.reveal())
        get_run_logger().warning(f"again, token={value.reveal()}")

    state = careless(return_state=True)

    api = _api_logs(state)
    assert f"token={MASK}" in api and f"again, token={MASK}" in api  # logged, masked
    assert f"token={MASK}" in console.getvalue()
    assert f"token={MASK}" in caplog.text
    assert_secret_absent(planted, api, console.getvalue(), caplog.text)


def test_a_revealed_value_logged_inside_a_task_is_masked(
    credentials: VaultCredentials, path: str, planted: str, console: io.StringIO
) -> None:
    @task
    def use(value: Any) -> None:
        get_run_logger().info("calling the API with %r", {"token": value.reveal()})

    @flow(persist_result=False)
    def careless() -> None:
        use(read_vault_secret(path, "token", credentials=credentials))

    state = careless(return_state=True)

    api = _api_logs(state)
    assert f"calling the API with {{'token': '{MASK}'}}" in api
    assert_secret_absent(planted, api, console.getvalue())


def test_printed_values_are_masked_when_prints_are_logged(
    credentials: VaultCredentials, path: str, planted: str, capsys: pytest.CaptureFixture[str]
) -> None:
    @flow(persist_result=False, log_prints=True)
    def careless() -> None:
        value = read_vault_secret(path, "token", credentials=credentials)
        print("token is", value.reveal())

    state = careless(return_state=True)

    api = _api_logs(state)
    assert f"token is {MASK}" in api
    assert_secret_absent(planted, api, capsys.readouterr().out)


def test_a_traceback_holding_the_value_is_masked(
    credentials: VaultCredentials, path: str, planted: str, console: io.StringIO
) -> None:
    @task
    def use(value: Any) -> None:
        raise RuntimeError(f"the server refused token {value.reveal()}")

    @flow(persist_result=False)
    def careless() -> None:
        use(read_vault_secret(path, "token", credentials=credentials))

    state = careless(return_state=True)

    assert state.is_failed()
    api = _api_logs(state)
    assert f"the server refused token {MASK}" in api  # Prefect logs the failure and traceback
    assert "Traceback" in api
    assert_secret_absent(planted, api, console.getvalue())


def test_any_logger_routed_to_the_api_is_masked(
    credentials: VaultCredentials, path: str, planted: str, console: io.StringIO
) -> None:
    send_core_logs_to_prefect()  # the guardflow logger gets an API handler, as in every step

    @flow(persist_result=False)
    def careless() -> None:
        value = read_vault_secret(path, "token", credentials=credentials)
        logging.getLogger("guardflow.user_code").warning("token %s", value.reveal())
        logging.getLogger("some.library").warning("library saw %s", value.reveal())

    state = careless(return_state=True)

    api = _api_logs(state)
    assert f"token {MASK}" in api
    assert f"library saw {MASK}" in console.getvalue()  # the root's console handler masks too
    assert_secret_absent(planted, api, console.getvalue())


def test_async_read_registers_the_value_too(
    credentials: VaultCredentials, path: str, planted: str
) -> None:
    @flow(persist_result=False)
    async def careless() -> None:
        value = await aread_vault_secret(path, "token", credentials=credentials)
        get_run_logger().info("token=%s", value.reveal())

    state = asyncio.run(careless(return_state=True))

    api = _api_logs(state)
    assert f"token={MASK}" in api
    assert_secret_absent(planted, api)


def test_credentials_secrets_are_masked_once_a_client_is_made() -> None:
    token = f"hvs.{uuid.uuid4().hex}"
    credentials = VaultCredentials(url="http://127.0.0.1:8200", token=SecretStr(token))
    assert mask_secrets(f"header {token}") == f"header {token}"  # not registered yet

    credentials.get_client().close()

    assert mask_secrets(f"header {token}") == f"header {MASK}"


def test_installing_twice_attaches_the_filter_once() -> None:
    install_log_masking()
    install_log_masking()

    prefect_handlers = [
        h
        for name in ("", "prefect.flow_runs", "prefect.task_runs")
        for h in logging.getLogger(name).handlers
        if type(h).__module__.startswith("prefect.")
    ]
    assert prefect_handlers
    for handler in prefect_handlers:
        assert sum(isinstance(f, SecretMaskingFilter) for f in handler.filters) == 1
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, SecretMaskingFilter) for f in filters) == 1


# -- the filter itself -------------------------------------------------------------------------


def _record(msg: str, *args: Any, exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("test", logging.INFO, __file__, 1, msg, args or None, exc_info)


def test_filter_masks_the_formatted_message_and_keeps_the_record() -> None:
    masker = SecretMaskingFilter()
    masker.add("s3cr3t-value")
    record = _record("user=%s token=%s", "app", "s3cr3t-value")

    assert masker.filter(record) is True
    assert record.getMessage() == f"user=app token={MASK}"


def test_filter_leaves_records_without_a_secret_untouched() -> None:
    masker = SecretMaskingFilter()
    masker.add("s3cr3t-value")
    args = ({"rows": 10},)
    record = _record("summary %s", *args)

    masker.filter(record)

    assert (record.msg, record.args) == ("summary %s", args[0])


def test_filter_masks_escaped_forms_and_each_line_of_multiline_values() -> None:
    masker = SecretMaskingFilter()
    value = 'line-one "quoted"\nline-two-of-key'
    masker.add(value)

    assert masker.mask(repr(value)) == f"'{MASK}'"
    assert masker.mask('{"k": "line-one \\"quoted\\"\\nline-two-of-key"}') == f'{{"k": "{MASK}"}}'
    assert masker.mask("only line-two-of-key here") == f"only {MASK} here"


def test_filter_masks_the_longest_value_first() -> None:
    masker = SecretMaskingFilter()
    masker.add("abcdef")
    masker.add("abcdefgh")

    assert masker.mask("x abcdefgh y abcdef") == f"x {MASK} y {MASK}"


def test_values_shorter_than_five_characters_are_not_masked() -> None:
    masker = SecretMaskingFilter()
    masker.add("abcd")

    assert masker.mask("abcd is everywhere") == "abcd is everywhere"


def test_filter_masks_traceback_text() -> None:
    masker = SecretMaskingFilter()
    masker.add("s3cr3t-value")
    try:
        raise ValueError("refused s3cr3t-value")
    except ValueError:
        record = _record("request failed", exc_info=sys.exc_info())

    masker.filter(record)
    text = logging.Formatter().format(record)

    assert f"ValueError: refused {MASK}" in text
    assert "s3cr3t-value" not in text


def test_register_secret_accepts_secret_values_mappings_and_secret_str() -> None:
    from guardflow.secrets import Secret, SecretValue

    values = [f"value-{uuid.uuid4().hex}" for _ in range(4)]
    register_secret(SecretValue(values[0]))
    register_secret(Secret({"a": values[1]}, path="p"))
    register_secret(SecretStr(values[2]))
    register_secret({"nested": [values[3]]})

    assert mask_secrets(" ".join(values)) == " ".join([MASK] * 4)
