"""Each failure a user meets gives its own actionable error, tested against a real OpenBao.

Every test plants a secret value and checks it appears in no message, log, output or traceback.
"""

from __future__ import annotations

import logging
import secrets
import socket
import traceback
from collections.abc import Iterator

import pytest

from guardflow.errors import (
    SecretEngineNotMountedError,
    SecretKeyMissingError,
    SecretNotFoundError,
    SecretsError,
    VaultAuthError,
    VaultPermissionError,
    VaultSealedError,
    VaultUnreachableError,
)
from guardflow.secrets import AppRoleAuth, SecretCache, TokenAuth, VaultClient, VaultConfig
from guardflow.testing.vault_server import VaultServer, assert_secret_absent


@pytest.fixture
def planted(vault_server: VaultServer) -> Iterator[tuple[str, str]]:
    """A secret at a fresh path: ``(path, value)``."""
    path = f"errors/{secrets.token_hex(4)}"
    value = f"planted-{secrets.token_hex(8)}"
    vault_server.request("POST", f"secret/data/{path}", json={"data": {"password": value}})
    yield path, value


def _client(config: VaultConfig) -> VaultClient:
    return VaultClient(config, cache=SecretCache())


def _assert_clean(
    value: str,
    exc: BaseException,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    *secrets_: str,
) -> None:
    shown = "".join(traceback.format_exception(exc))
    out = capsys.readouterr()
    for secret in (value, *secrets_):
        assert_secret_absent(secret, str(exc), repr(exc), shown, caplog.text, out.out, out.err)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port_is_unreachable_and_retryable(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    token = secrets.token_hex(8)
    config = VaultConfig(
        url=f"http://127.0.0.1:{_closed_port()}",
        auth=TokenAuth.model_validate({"token": token}),
        timeout=2,
    )
    with _client(config) as vault, pytest.raises(VaultUnreachableError) as info:
        vault.read("app")
    assert info.value.retryable
    assert "check VAULT_ADDR" in str(info.value)
    _assert_clean(token, info.value, caplog, capsys)


def test_stopped_server_is_unreachable(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with VaultServer() as server:
        server.request("POST", "secret/data/app", json={"data": {"k": "stopped-value"}})
        vault = _client(server.config(kv_version=2))
        server.stop()
        with vault, pytest.raises(VaultUnreachableError, match=server.url) as info:
            vault.read("app")
    _assert_clean("stopped-value", info.value, caplog, capsys, server.root_token)


def test_sealed_server_says_to_unseal(
    vault_server: VaultServer,
    vault_config: VaultConfig,
    planted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, value = planted
    vault_server.seal()
    try:
        with _client(vault_config) as vault, pytest.raises(VaultSealedError) as info:
            vault.read(path, kv_version=2)
    finally:
        vault_server.unseal()
    assert "bao operator unseal" in str(info.value)
    assert info.value.retryable
    _assert_clean(value, info.value, caplog, capsys)


def test_bad_token_is_an_auth_error(
    vault_server: VaultServer,
    planted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, value = planted
    bad = f"s.{secrets.token_hex(12)}"
    config = vault_server.config(TokenAuth.model_validate({"token": bad}))
    with _client(config) as vault, pytest.raises(VaultAuthError, match="VAULT_TOKEN") as info:
        vault.read_key(path, "password")
    assert info.value.method == "token"
    _assert_clean(value, info.value, caplog, capsys, bad)


def test_bad_approle_secret_is_an_auth_error(
    vault_server: VaultServer,
    planted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, value = planted
    role_id, good = vault_server.create_approle("errors", ["admin"])
    bad = secrets.token_hex(8)
    auth = AppRoleAuth.model_validate({"role_id": role_id, "secret_id": bad})
    with _client(vault_server.config(auth)) as vault, pytest.raises(VaultAuthError) as info:
        vault.read_key(path, "password")
    assert info.value.mount == "approle"
    _assert_clean(value, info.value, caplog, capsys, bad, good)


def test_policy_denial_names_the_path_and_capability(
    vault_server: VaultServer,
    planted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, value = planted
    vault_server.write_policy(
        "deny-errors", 'path "secret/data/errors/*" { capabilities = ["deny"] }'
    )
    token = vault_server.create_token(["deny-errors"])
    config = vault_server.config(TokenAuth.model_validate({"token": token}))
    with _client(config) as vault, pytest.raises(VaultPermissionError) as info:
        vault.read_key(path, "password", kv_version=2)
    assert info.value.path == f"secret/data/{path}"
    assert f"grants 'read' on 'secret/data/{path}'" in str(info.value)
    _assert_clean(value, info.value, caplog, capsys, token)


def test_missing_path_is_not_found(
    vault_config: VaultConfig,
    planted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, value = planted
    with _client(vault_config) as vault, pytest.raises(SecretNotFoundError) as info:
        vault.read(f"{path}-typo")
    assert (info.value.path, info.value.mount) == (f"{path}-typo", "secret")
    _assert_clean(value, info.value, caplog, capsys)


def test_missing_key_lists_the_keys_the_secret_has(
    vault_config: VaultConfig,
    planted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, value = planted
    with _client(vault_config) as vault, pytest.raises(SecretKeyMissingError) as info:
        vault.read_key(path, "passwd")
    assert info.value.available == ["password"]
    assert info.value.key == "passwd"
    assert "its keys are ['password']" in str(info.value)
    _assert_clean(value, info.value, caplog, capsys)


def test_unmounted_engine_is_named(
    vault_config: VaultConfig,
    planted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, value = planted
    with _client(vault_config) as vault, pytest.raises(SecretEngineNotMountedError) as info:
        vault.read("app", mount="no-such-mount")
    assert info.value.mount == "no-such-mount"
    assert "bao secrets list" in str(info.value)
    _assert_clean(value, info.value, caplog, capsys)


def test_kv_version_on_a_v1_mount_is_refused(vault_config: VaultConfig) -> None:
    with _client(vault_config) as vault, pytest.raises(SecretsError, match="KV version 1"):
        vault.read("app", mount="kv1", version=2)


def test_tls_without_the_ca_bundle_says_how_to_fix_it(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with VaultServer(tls=True) as server:
        config = server.config(verify=True)
        with _client(config) as vault, pytest.raises(VaultUnreachableError) as info:
            vault.read("app")
    assert "VAULT_CACERT" in str(info.value)
    _assert_clean(server.root_token, info.value, caplog, capsys)


def test_every_secrets_error_derives_from_secrets_error() -> None:
    for cls in (
        VaultUnreachableError,
        VaultSealedError,
        VaultAuthError,
        VaultPermissionError,
        SecretNotFoundError,
        SecretKeyMissingError,
        SecretEngineNotMountedError,
    ):
        assert issubclass(cls, SecretsError)
