"""Vault blocks: registration, secrets stored encrypted, mapping onto guardflow's VaultConfig.

Prefect's standard block checks run over these blocks in test_blocks.py (every block of the
package is discovered there); the secret block against a real OpenBao server is in
test_vault.py.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from prefect.client.orchestration import get_client
from pydantic import SecretStr, ValidationError

from guardflow.errors import ConfigurationError
from guardflow.secrets import (
    AppRoleAuth,
    JWTAuth,
    KubernetesAuth,
    TokenAuth,
    UserpassAuth,
    VaultConfig,
)
from prefect_guardflow.vault import VaultCredentials, VaultSecret

if TYPE_CHECKING:
    from conftest import PrefectServer


def _planted() -> str:
    return f"planted-{uuid.uuid4().hex}"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_block_slugs_are_the_released_ones() -> None:
    # Saved blocks reference their type by slug: changing it after a release orphans them.
    assert VaultCredentials.get_block_type_slug() == "guardflow-vault-credentials"
    assert VaultCredentials.get_block_type_name() == "Guardflow Vault Credentials"
    assert VaultSecret.get_block_type_slug() == "guardflow-vault-secret"
    assert VaultSecret.get_block_type_name() == "Guardflow Vault Secret"


def test_server_registered_the_vault_block_types_from_the_entry_point(
    prefect_server: PrefectServer,
) -> None:
    assert {"guardflow-vault-credentials", "guardflow-vault-secret"} <= (
        prefect_server.block_types_at_start
    )


def test_saved_credentials_keep_every_secret_field_encrypted_and_load_them_back() -> None:
    token, secret_id, password, jwt = (_planted() for _ in range(4))
    name = _name("vault")
    VaultCredentials(
        url="http://127.0.0.1:8200",
        auth_method="approle",
        token=SecretStr(token),
        role_id="role-1",
        secret_id=SecretStr(secret_id),
        password=SecretStr(password),
        jwt=SecretStr(jwt),
    ).save(name)

    with get_client(sync_client=True) as client:
        stored = client.read_block_document_by_name(
            name, block_type_slug="guardflow-vault-credentials", include_secrets=False
        )
    loaded = VaultCredentials.load(name)

    for planted in (token, secret_id, password, jwt):
        assert planted not in str(stored.data)
        assert planted not in repr(loaded)
    assert stored.data["role_id"] == "role-1"  # not a secret: readable as is
    assert loaded.token is not None and loaded.token.get_secret_value() == token
    assert loaded.secret_id is not None and loaded.secret_id.get_secret_value() == secret_id
    assert loaded.password is not None and loaded.password.get_secret_value() == password
    assert loaded.jwt is not None and loaded.jwt.get_secret_value() == jwt


def test_saved_secret_block_nests_the_credentials_and_keeps_their_token_secret() -> None:
    token = _planted()
    name = _name("vault-secret")
    VaultSecret(
        vault_credentials=VaultCredentials(url="http://127.0.0.1:8200", token=SecretStr(token)),
        path="app/db",
        mount="kv1",
        key="password",
        kv_version=1,
    ).save(name)

    with get_client(sync_client=True) as client:
        stored = client.read_block_document_by_name(
            name, block_type_slug="guardflow-vault-secret", include_secrets=False
        )
    loaded = VaultSecret.load(name)

    assert token not in str(stored.data)
    assert (loaded.path, loaded.mount, loaded.key, loaded.kv_version) == (
        "app/db",
        "kv1",
        "password",
        1,
    )
    assert loaded.vault_credentials.token is not None
    assert loaded.vault_credentials.token.get_secret_value() == token


# -- mapping onto guardflow's VaultConfig ----------------------------------------------------------


def test_token_credentials_map_onto_token_auth_and_tls_settings() -> None:
    block = VaultCredentials(
        url="https://vault.example.com:8200/",
        namespace="team-a",
        token=SecretStr("hvs.x"),
        ca_bundle="/etc/ssl/vault-ca.pem",
        timeout=3.5,
        kv_mount="kv",
        kv_version=1,
    )

    config = block.to_config()

    assert config == VaultConfig(
        url="https://vault.example.com:8200",
        namespace="team-a",
        verify="/etc/ssl/vault-ca.pem",
        timeout=3.5,
        auth=TokenAuth(token=SecretStr("hvs.x")),
        kv_mount="kv",
        kv_version=1,
    )


def test_verify_tls_false_turns_verification_off_even_with_a_ca_bundle() -> None:
    block = VaultCredentials(
        url="https://127.0.0.1:8200",
        token=SecretStr("hvs.x"),
        verify_tls=False,
        ca_bundle="/etc/ssl/vault-ca.pem",
    )
    assert block.to_config().verify is False


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"auth_method": "approle", "role_id": "r", "secret_id": SecretStr("s")},
            AppRoleAuth(role_id="r", secret_id=SecretStr("s")),
        ),
        (
            {
                "auth_method": "approle",
                "role_id": "r",
                "secret_id": SecretStr("s"),
                "auth_mount": "ci-approle",
            },
            AppRoleAuth(role_id="r", secret_id=SecretStr("s"), mount="ci-approle"),
        ),
        (
            {"auth_method": "userpass", "username": "u", "password": SecretStr("p")},
            UserpassAuth(username="u", password=SecretStr("p")),
        ),
        (
            {"auth_method": "kubernetes", "role": "etl", "audience": "vault"},
            KubernetesAuth(role="etl", audience="vault"),
        ),
        (
            {"auth_method": "kubernetes", "role": "etl", "jwt_path": "/var/run/vault/token"},
            KubernetesAuth(role="etl", jwt_path="/var/run/vault/token"),
        ),
        (
            {"auth_method": "jwt", "role": "ci", "jwt": SecretStr("eyJ.x.y")},
            JWTAuth(role="ci", jwt=SecretStr("eyJ.x.y")),
        ),
        (
            {"auth_method": "jwt", "role": "ci", "jwt_path": "/tmp/jwt", "auth_mount": "oidc"},
            JWTAuth(role="ci", jwt_path="/tmp/jwt", mount="oidc"),
        ),
    ],
    ids=lambda v: v.get("auth_method", "") if isinstance(v, dict) else type(v).__name__,
)
def test_each_auth_method_maps_onto_its_core_auth_model(
    fields: dict[str, object], expected: object
) -> None:
    block = VaultCredentials(url="http://127.0.0.1:8200", **fields)  # type: ignore[arg-type]
    assert block.to_config().auth == expected


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"auth_method": "token"}, "token"),
        ({"auth_method": "approle", "role_id": "r"}, "secret_id"),
        ({"auth_method": "userpass", "password": SecretStr("p")}, "username"),
        ({"auth_method": "kubernetes"}, "role"),
        ({"auth_method": "jwt", "role": "ci"}, "jwt or jwt_path"),
    ],
    ids=lambda v: v.get("auth_method", "") if isinstance(v, dict) else v,
)
def test_a_field_the_auth_method_needs_is_named_when_missing(
    fields: dict[str, object], named: str
) -> None:
    block = VaultCredentials(url="http://127.0.0.1:8200", **fields)  # type: ignore[arg-type]

    with pytest.raises(ConfigurationError, match=f"needs {named}"):
        block.to_config()


def test_invalid_url_is_refused_when_the_block_is_built_without_echoing_it() -> None:
    planted = _planted()
    with pytest.raises(ValidationError, match="must start with http:// or https://") as info:
        VaultCredentials(url=f"ftp://user:{planted}@vault.invalid", token=SecretStr(planted))

    assert planted not in str(info.value)


def test_from_config_round_trips_through_to_config() -> None:
    config = VaultConfig(
        url="https://vault.example.com:8200",
        namespace="ns",
        verify="/ca.pem",
        auth=AppRoleAuth(role_id="r", secret_id=SecretStr("s"), mount="ci"),
        kv_mount="kv",
        kv_version=2,
    )
    assert VaultCredentials.from_config(config).to_config() == config


def test_from_env_reads_the_standard_variables() -> None:
    token = _planted()
    environ = {
        "VAULT_ADDR": "http://127.0.0.1:8200",
        "VAULT_TOKEN": token,
        "VAULT_NAMESPACE": "team-a",
        "VAULT_SKIP_VERIFY": "true",
    }

    block = VaultCredentials.from_env(environ)

    assert (block.url, block.auth_method, block.namespace) == (
        "http://127.0.0.1:8200",
        "token",
        "team-a",
    )
    assert block.token is not None and block.token.get_secret_value() == token
    assert block.verify_tls is False


def test_from_env_reads_approle_variables() -> None:
    secret_id = _planted()
    environ = {
        "VAULT_ADDR": "http://127.0.0.1:8200",
        "VAULT_ROLE_ID": "role-7",
        "VAULT_SECRET_ID": secret_id,
        "VAULT_CACERT": "/etc/ssl/ca.pem",
    }

    block = VaultCredentials.from_env(environ)

    assert (block.auth_method, block.role_id, block.auth_mount) == ("approle", "role-7", None)
    assert block.secret_id is not None and block.secret_id.get_secret_value() == secret_id
    assert (block.verify_tls, block.ca_bundle) == (True, "/etc/ssl/ca.pem")


def test_from_env_without_an_address_names_the_variable() -> None:
    token = _planted()
    with pytest.raises(ConfigurationError, match="VAULT_ADDR") as info:
        VaultCredentials.from_env({"VAULT_TOKEN": token})
    assert token not in str(info.value)


def test_secret_block_ref_fills_in_the_credentials_mount_and_kv_version() -> None:
    credentials = VaultCredentials(
        url="http://127.0.0.1:8200", token=SecretStr("hvs.x"), kv_mount="team/kv", kv_version=1
    )
    block = VaultSecret(vault_credentials=credentials, path="app/db", key="password")

    assert str(block.ref()) == "vault:///app/db?mount=team%2Fkv&kv=1#password"
    assert block.ref(version=3).version == 3
