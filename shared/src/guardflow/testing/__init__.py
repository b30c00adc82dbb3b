"""The guardflow pytest plugin: real model servers and fault injection for your tests.

Installed with guardflow and loaded through the ``pytest11`` entry point, so these fixtures are
available in any test without an import:

| fixture | scope | gives |
|---|---|---|
| ``mlflow_model_server`` | session | :class:`~guardflow.testing.model_servers.MLflowModelServer`: MLflow's scoring server on a tiny sklearn model |
| ``mlserver_model_server`` | session | :class:`~guardflow.testing.model_servers.MLServerModelServer`: MLServer (Open Inference Protocol v2), run from its own cached environment |
| ``fault_server`` | function | :class:`~guardflow.testing.fault_server.FaultServer`: a local server with scripted faults |
| ``guardflow_audit_sink`` | function | a :class:`~guardflow.audit.MemoryAuditSink` to pass as ``audit_sink=`` |
| ``vault_server`` | session | :class:`~guardflow.testing.vault_server.VaultServer`: a real OpenBao dev server (KV v1/v2, transit, AppRole, userpass) |
| ``vault_config`` | function | a :class:`~guardflow.secrets.VaultConfig` for ``vault_server`` with a fresh child token (root policy) |
| ``gate_store`` / ``gate_signer`` | function | a :class:`~guardflow.gates.store.GateStore` on SQLite in ``tmp_path`` / a :class:`~guardflow.gates.tokens.LinkSigner` with a random key |
| ``gate_decider`` | function | points ``$GUARDFLOW_GATES_DB`` at a fresh SQLite store; ``gate_decider(option)`` starts a :class:`~guardflow.testing.gate_decider.GateDecider` that votes on every pending gate |
| ``postgres_server`` / ``postgres_url`` | session / function | a throwaway PostgreSQL server (Debian's binaries) / a fresh database on it, as a SQLAlchemy URL |
| ``gate_server`` | function | :class:`~guardflow.testing.gate_fixtures.GateServer`: the gate review page on a free port (identity header ``X-Forwarded-User``) |
| ``chromium_page`` | function | a Playwright page in headless Debian Chromium |
| ``notification_receiver`` | function | :class:`~guardflow.testing.notify_sinks.NotificationReceiver`: a local webhook endpoint recording JSON POSTs (``.url()``, ``.requests``, ``.wait_for()``, ``.fail_next()``) |
| ``smtp_sink`` | function | :class:`~guardflow.testing.notify_sinks.SMTPSink`: a local SMTP server (aiosmtpd) keeping mails (``.host``, ``.port``, ``.messages``, ``.wait_for()``) |

This module is imported by every pytest session of everyone who installs guardflow, so it imports
nothing heavy: each fixture imports what it needs when it is first used.

Examples:
    >>> def test_scores(mlflow_model_server):  # doctest: +SKIP
    ...     config = InferenceConfig(endpoint=mlflow_model_server.endpoint())
    ...     summary = run_inference(sample_rows(10), "out.parquet", config)
    ...     assert summary.succeeded == 10
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

# Stdlib-only module (about 20 ms to import): cheap enough to load with the plugin.
from guardflow.testing.fault_server import fault_server

# Stdlib + pytest only at import time; the gate fixtures import their dependencies when used.
from guardflow.testing.gate_decider import gate_decider
from guardflow.testing.gate_fixtures import chromium_page, gate_server, gate_signer, gate_store
from guardflow.testing.postgres_server import postgres_server, postgres_url

if TYPE_CHECKING:
    from guardflow.audit import MemoryAuditSink
    from guardflow.secrets.config import VaultConfig
    from guardflow.testing.model_servers import MLflowModelServer, MLServerModelServer
    from guardflow.testing.notify_sinks import NotificationReceiver, SMTPSink
    from guardflow.testing.vault_server import VaultServer

__all__ = [
    "chromium_page",
    "fault_server",
    "gate_decider",
    "gate_server",
    "gate_signer",
    "gate_store",
    "guardflow_audit_sink",
    "mlflow_model_server",
    "mlserver_model_server",
    "notification_receiver",
    "postgres_server",
    "postgres_url",
    "smtp_sink",
    "vault_config",
    "vault_server",
]


@pytest.fixture(scope="session")
def mlflow_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLflowModelServer]:
    """MLflow's scoring server serving a tiny linear model, started once per session.

    Predictions follow :func:`~guardflow.testing.model_servers.expected_prediction`. A test that
    stops or kills the server must start it again before it ends (``restart()`` or ``start()``):
    other tests share it.

    Yields:
        The running server: ``.url``, ``.endpoint()``, ``.start()``, ``.stop()``, ``.kill()``,
        ``.restart()``, ``.log_path``.
    """
    from guardflow.testing.model_servers import MLflowModelServer

    server = MLflowModelServer(tmp_path_factory.mktemp("mlflow-model-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlserver_model_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MLServerModelServer]:
    """MLServer serving a tiny linear model as ``tiny-model`` (v2), started once per session.

    The first session on a machine builds MLServer's own environment into
    ``$GUARDFLOW_CACHE_DIR`` (default ``~/.cache/guardflow``); later sessions reuse it.

    Yields:
        The running server, with the same handle as ``mlflow_model_server``.
    """
    from guardflow.testing.model_servers import MLServerModelServer

    server = MLServerModelServer(tmp_path_factory.mktemp("mlserver-model-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def guardflow_audit_sink() -> MemoryAuditSink:
    """An in-memory audit sink: pass it as ``audit_sink=`` and read ``.events``."""
    from guardflow.audit import MemoryAuditSink

    return MemoryAuditSink()


@pytest.fixture(scope="session")
def vault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    """A real OpenBao dev server, started once per session (about a second).

    KV v2 at ``secret/``, KV v1 at ``kv1/``, transit at ``transit/``, AppRole at ``approle/``
    and userpass at ``userpass/``. A test that seals or stops it must unseal or start it again
    before it ends (``vault_config`` also restores it for the next test).

    Yields:
        The running server: ``.url``, ``.root_token``, ``.config()``, ``.client()``,
        ``.create_token()``, ``.create_approle()``, ``.write_policy()``, ``.seal()``/``.unseal()``,
        ``.stop()``/``.start()``, ``.log_path``.
    """
    from guardflow.testing.vault_server import VaultServer

    server = VaultServer(tmp_path_factory.mktemp("openbao"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vault_config(vault_server: VaultServer) -> VaultConfig:
    """A :class:`~guardflow.secrets.VaultConfig` for ``vault_server`` with a fresh child token.

    The token has the root policy and a one-hour TTL; being new for each test, it also keeps
    each test's reads apart in the process-wide secret cache.
    """
    from guardflow.secrets.auth import TokenAuth

    vault_server.ensure_ready()
    token = vault_server.create_token(["root"], ttl="1h")
    return vault_server.config(TokenAuth.model_validate({"token": token}))


@pytest.fixture
def notification_receiver() -> Iterator[NotificationReceiver]:
    """A local webhook endpoint (Slack, Teams, generic webhook) on a free port, per test.

    Yields:
        The running receiver: ``.url(path)``, ``.requests`` (path, headers, json), ``.bodies``,
        ``.statuses``, ``.wait_for(n, timeout)``, ``.fail_next(n, status, retry_after)``.
    """
    from guardflow.testing.notify_sinks import notification_receiver_fixture

    yield from notification_receiver_fixture()


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    """A local SMTP server (aiosmtpd) on a free port that keeps every mail, per test.

    Yields:
        The running sink: ``.host``, ``.port``, ``.messages`` (EmailMessage), ``.recipients``,
        ``.logins``, ``.wait_for(n, timeout)``, ``.fail_next(n, code)``.
    """
    from guardflow.testing.notify_sinks import smtp_sink_fixture

    yield from smtp_sink_fixture()
