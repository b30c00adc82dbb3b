"""KV v1 and v2 through VaultClient against a real OpenBao: reads, keys, versions, writes, refs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from guardflow.errors import SecretNotFoundError
from guardflow.secrets import Secret, SecretCache, SecretValue, VaultClient, VaultConfig
from guardflow.testing.vault_server import VaultServer, assert_secret_absent


@pytest.fixture
def vault(vault_config: VaultConfig) -> Iterator[VaultClient]:
    with VaultClient(vault_config, cache=SecretCache()) as client:
        yield client


@pytest.fixture
def planted() -> str:
    return f"planted-{secrets.token_hex(8)}"


def _name() -> str:
    return f"kv/{secrets.token_hex(4)}"


def test_v2_read_returns_every_key_masked(
    vault: VaultClient,
    planted: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _name()
    vault.write(path, {"password": planted, "user": "app"})
    secret = vault.read(path)
    print(secret, repr(secret), dict(secret))
    assert isinstance(secret, Secret)
    assert secret.reveal() == {"password": planted, "user": "app"}
    assert secret.version == 1
    assert secret.mount == "secret"
    assert_secret_absent(planted, caplog.text, capsys.readouterr().out, repr(secret))


def test_read_key_returns_one_secret_value(vault: VaultClient, planted: str) -> None:
    path = _name()
    vault.write(path, {"token": planted})
    value = vault.read_key(path, "token")
    assert isinstance(value, SecretValue)
    assert value.reveal() == planted
    assert_secret_absent(planted, str(value), repr(value), f"{value}")


def test_v2_write_returns_versions_and_old_versions_stay_readable(vault: VaultClient) -> None:
    path = _name()
    assert vault.write(path, {"k": "one"}) == 1
    assert vault.write(path, {"k": "two"}) == 2
    assert vault.read_key(path, "k").reveal() == "two"
    assert vault.read_key(path, "k", version=1).reveal() == "one"
    assert vault.read(path, version=1).version == 1


def test_write_invalidates_the_cached_secret(vault: VaultClient) -> None:
    path = _name()
    vault.write(path, {"k": "one"})
    assert vault.read_key(path, "k").reveal() == "one"
    vault.write(path, {"k": "two"})
    assert vault.read_key(path, "k").reveal() == "two"


def test_v1_mount_is_detected_and_read(vault: VaultClient, planted: str) -> None:
    path = _name()
    assert vault.write(path, {"password": planted}, mount="kv1") is None
    assert vault.kv_version("kv1") == 1
    assert vault.kv_version("secret") == 2
    secret = vault.read(path, mount="kv1")
    assert secret.reveal() == {"password": planted}
    assert secret.version is None


def test_v1_ttl_becomes_the_secret_lease(vault: VaultClient) -> None:
    path = _name()
    vault.write(path, {"k": "v", "ttl": "90s"}, mount="kv1")
    secret = vault.read(path, mount="kv1")
    assert secret.lease is not None
    assert secret.lease.duration == 90
    assert not secret.lease.renewable


def test_explicit_kv_version_skips_detection(vault: VaultClient) -> None:
    path = _name()
    vault.write(path, {"k": "v"}, mount="kv1", kv_version=1)
    assert vault.read_key(path, "k", mount="kv1", kv_version=1).reveal() == "v"


def test_mount_given_separately_is_not_doubled(
    vault_server: VaultServer, vault: VaultClient
) -> None:
    vault_server.request("POST", "sys/mounts/team/kv", json={"type": "kv-v2"})
    path = _name()
    vault.write(path, {"k": "v"}, mount="team/kv")
    body = vault_server.request("GET", f"team/kv/data/{path}")
    assert body["data"]["data"] == {"k": "v"}
    assert vault.get(f"vault:///{path}?mount=team/kv#k").reveal() == "v"  # type: ignore[union-attr]


def test_path_with_the_mount_in_front_gets_a_hint(vault: VaultClient) -> None:
    path = _name()
    vault.write(path, {"k": "v"})
    with pytest.raises(SecretNotFoundError, match=f"did you mean path='{path}'"):
        vault.read(f"secret/{path}")


def test_get_resolves_a_key_ref_to_a_value(vault: VaultClient, planted: str) -> None:
    path = _name()
    vault.write(path, {"token": planted})
    value = vault.get(f"vault://secret/{path}#token")
    assert isinstance(value, SecretValue)
    assert value.reveal() == planted


def test_get_resolves_a_ref_without_key_to_the_secret(vault: VaultClient) -> None:
    path = _name()
    vault.write(path, {"a": "1", "b": "2"})
    secret = vault.get(f"vault://secret/{path}")
    assert isinstance(secret, Secret)
    assert sorted(secret) == ["a", "b"]


def test_get_honours_version_and_kv_in_the_ref(vault: VaultClient) -> None:
    path = _name()
    vault.write(path, {"k": "one"})
    vault.write(path, {"k": "two"})
    value = vault.get(f"vault://secret/{path}?version=1&kv=2#k")
    assert isinstance(value, SecretValue)
    assert value.reveal() == "one"


def test_write_accepts_secret_values(vault: VaultClient, planted: str) -> None:
    path = _name()
    vault.write(path, {"k": SecretValue(planted)})
    assert vault.read_key(path, "k").reveal() == planted


def test_non_string_values_keep_their_json_spelling(
    vault_server: VaultServer, vault: VaultClient
) -> None:
    path = _name()
    vault_server.request("POST", f"secret/data/{path}", json={"data": {"port": 5432, "on": True}})
    assert vault.read(path).reveal() == {"port": "5432", "on": "true"}
