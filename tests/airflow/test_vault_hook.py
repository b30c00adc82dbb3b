"""VaultHook reads secrets from a real OpenBao server through hashicorp-format connections.

Connections come through Airflow's real lookup (``AIRFLOW_CONN_<ID>`` variables), written the way
apache-airflow-providers-hashicorp documents them: URIs such as
``vault://:TOKEN@host:port/MOUNT?auth_type=token`` or JSON with ``login``/``password`` and extras.
Every test that reads a secret checks that the planted value shows up in none of the captured
output and is registered with Airflow's secrets masker (``redact``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.log import redact

from guardflow.errors import (
    ConfigurationError,
    SecretKeyMissingError,
    SecretNotFoundError,
    VaultAuthError,
    VaultPermissionError,
)
from guardflow.secrets import JWTAuth, KubernetesAuth, SecretValue
from guardflow.testing.vault_server import VaultServer, assert_secret_absent
from guardflow_airflow._secrets import resolve_credential
from guardflow_airflow.get_provider_info import VAULT_AUTH_TYPES, get_provider_info
from guardflow_airflow.hooks.vault import VaultHook

READ_POLICY = 'path "secret/data/gf-hook/*" { capabilities = ["read"] }'


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any] | str], str]:
    """Return ``set(connection) -> conn_id``: a new connection from JSON fields or a URI."""

    def set_conn(value: dict[str, Any] | str) -> str:
        conn_id = f"gf_vault_{uuid.uuid4().hex[:8]}"
        text = value if isinstance(value, str) else json.dumps(value)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", text)
        return conn_id

    return set_conn


@pytest.fixture
def ready(vault_server: VaultServer) -> VaultServer:
    vault_server.ensure_ready()
    return vault_server


@pytest.fixture
def planted(ready: VaultServer) -> Iterator[tuple[str, str]]:
    """``(path, value)``: a fresh secret at ``secret/gf-hook/<random>`` with key ``token``."""
    path = f"gf-hook/{uuid.uuid4().hex[:8]}"
    value = f"gf-hook-value-{uuid.uuid4().hex}"
    ready.request("POST", f"secret/data/{path}", json={"data": {"token": value, "user": "svc"}})
    yield path, value


def _token_uri(server: VaultServer, token: str, mount: str = "secret", **query: str) -> str:
    params = "&".join(f"{k}={v}" for k, v in {"auth_type": "token", **query}.items())
    return f"vault://:{token}@127.0.0.1:{server.port}/{mount}?{params}"


def _base(server: VaultServer, **fields: Any) -> dict[str, Any]:
    return {"conn_type": "vault", "host": "127.0.0.1", "port": server.port, **fields}


def _assert_read_and_masked(hook: VaultHook, path: str, value: str, *captured: object) -> None:
    found = hook.get_secret(path, "token")
    assert isinstance(found, SecretValue)
    assert found.reveal() == value
    assert redact(f"sent {value}") == "sent ***"
    assert_secret_absent(value, str(found), repr(found), *captured)


# --- lazy connection, provider info -----------------------------------------------------------


def test_building_the_hook_reads_no_connection() -> None:
    hook = VaultHook(vault_conn_id="gf_vault_not_defined_anywhere")

    with pytest.raises(ConfigurationError, match="'gf_vault_not_defined_anywhere' is not defined"):
        hook.get_config()


def test_provider_registers_the_guardflow_vault_connection_type() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook_info = ProvidersManagerTaskRuntime().hooks["guardflow_vault"]

    assert hook_info is not None
    assert hook_info.hook_class_name == "guardflow_airflow.hooks.vault.VaultHook"
    assert hook_info.connection_id_attribute_name == "vault_conn_id"


def test_connection_form_has_the_hashicorp_fields() -> None:
    (vault,) = [
        c
        for c in get_provider_info()["connection-types"]
        if c["connection-type"] == "guardflow_vault"
    ]
    hashicorp = {
        "auth_type",
        "auth_mount_point",
        "kv_engine_version",
        "kubernetes_role",
        "kubernetes_jwt_path",
        "jwt_role",
        "jwt_token",
        "jwt_token_path",
        "token_path",
        "use_tls",
    }

    assert hashicorp <= set(vault["conn-fields"])
    assert vault["conn-fields"]["auth_type"]["schema"]["enum"] == VAULT_AUTH_TYPES
    assert vault["conn-fields"]["jwt_token"]["schema"]["format"] == "password"


# --- mapping hashicorp's fields -----------------------------------------------------------------


def test_schema_is_the_kv_mount_and_use_tls_picks_https(conn: Callable[..., str]) -> None:
    conn_id = conn("vault://:t0ken-abcdef@vault.internal:8200/team-kv?use_tls=true")

    config = VaultHook(conn_id).get_config()

    assert config.url == "https://vault.internal:8200"
    assert config.kv_mount == "team-kv"


@pytest.mark.parametrize(
    ("conn_type", "host", "expected"),
    [
        ("vault", "vault.internal", "http://vault.internal:8200"),
        ("vaults", "vault.internal", "https://vault.internal:8200"),
        ("guardflow_vault", "https://vault.internal", "https://vault.internal:8200"),
    ],
)
def test_scheme_follows_the_connection_type_or_the_host(
    conn: Callable[..., str], conn_type: str, host: str, expected: str
) -> None:
    conn_id = conn({"conn_type": conn_type, "host": host, "port": 8200, "password": "t0ken-xyz"})

    assert VaultHook(conn_id).get_config().url == expected


def test_mount_defaults_to_secret_and_kv_version_to_detection(conn: Callable[..., str]) -> None:
    conn_id = conn({"conn_type": "vault", "host": "vault.internal", "password": "t0ken-xyz"})

    config = VaultHook(conn_id).get_config()

    assert (config.kv_mount, config.kv_version) == ("secret", None)


def test_namespace_verify_and_timeout_come_from_extras_or_client_kwargs(
    conn: Callable[..., str],
) -> None:
    client_kwargs = {"namespace": "team-a", "verify": "/etc/ssl/vault-ca.pem", "timeout": 3}
    conn_id = conn(
        {
            "conn_type": "vault",
            "host": "vault.internal",
            "password": "t0ken-xyz",
            "extra": {"client_kwargs": client_kwargs, "kv_engine_version": "1"},
        }
    )

    config = VaultHook(conn_id).get_config()

    assert (config.namespace, config.verify, config.timeout) == (
        "team-a",
        "/etc/ssl/vault-ca.pem",
        3.0,
    )
    assert config.kv_version == 1


def test_kubernetes_extras_map_onto_kubernetes_auth(conn: Callable[..., str]) -> None:
    extra = {
        "auth_type": "kubernetes",
        "kubernetes_role": "airflow",
        "kubernetes_jwt_path": "/var/run/secrets/vault/token",
        "kubernetes_audience": "vault",
        "auth_mount_point": "k8s-prod",
    }
    conn_id = conn({"conn_type": "vault", "host": "vault.internal", "extra": extra})

    auth = VaultHook(conn_id).get_config().auth

    assert isinstance(auth, KubernetesAuth)
    assert (auth.role, auth.jwt_path, auth.audience, auth.mount) == (
        "airflow",
        "/var/run/secrets/vault/token",
        "vault",
        "k8s-prod",
    )


@pytest.mark.parametrize("auth_type", ["aws_iam", "gcp", "azure", "github", "ldap", "radius"])
def test_auth_types_guardflow_does_not_serve_are_refused_by_name(
    conn: Callable[..., str], auth_type: str
) -> None:
    conn_id = conn(
        {"conn_type": "vault", "host": "vault.internal", "extra": {"auth_type": auth_type}}
    )

    with pytest.raises(ConfigurationError) as excinfo:
        VaultHook(conn_id).get_config()

    message = str(excinfo.value)
    assert f"auth_type {auth_type!r} is not supported" in message
    assert all(name in message for name in VAULT_AUTH_TYPES)


def test_missing_credentials_are_named_without_values(conn: Callable[..., str]) -> None:
    conn_id = conn(
        {
            "conn_type": "vault",
            "host": "vault.internal",
            "password": "s3cret-id-value",
            "extra": {"auth_type": "approle"},
        }
    )

    with pytest.raises(ConfigurationError, match="role id in login") as excinfo:
        VaultHook(conn_id).get_config()

    assert_secret_absent("s3cret-id-value", excinfo.value)


def test_unknown_extras_are_named_in_a_warning(
    conn: Callable[..., str], capfd: pytest.CaptureFixture[str]
) -> None:
    extra = {"kv_engin_version": "1", "client_kwargs": {"proxies": {}, "namespace": "a"}}
    conn_id = conn(
        {"conn_type": "vault", "host": "vault.internal", "password": "t0ken-xyz", "extra": extra}
    )

    VaultHook(conn_id).get_config()

    # Hook logs go through Airflow's structlog console renderer, not the logging module.
    assert "ignoring extras ['kv_engin_version', 'client_kwargs.proxies']" in capfd.readouterr().out


# --- reading from OpenBao with each auth type it serves ------------------------------------


def test_token_auth_from_a_uri_reads_a_kv2_key(
    ready: VaultServer,
    planted: tuple[str, str],
    conn: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path, value = planted
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["root"]))))

    _assert_read_and_masked(hook, path, value)

    hook.close()
    assert_secret_absent(value, caplog.text, "".join(capfd.readouterr()))


def test_token_auth_reads_the_token_from_token_path(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str], tmp_path: Path
) -> None:
    path, value = planted
    token_file = tmp_path / "vault-token"
    token_file.write_text(ready.create_token(["root"]) + "\n")
    hook = VaultHook(conn(_base(ready, extra={"token_path": str(token_file)})))

    _assert_read_and_masked(hook, path, value)


def test_approle_auth_takes_the_role_id_from_login(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    ready.write_policy("gf-hook-read", READ_POLICY)
    role_id, secret_id = ready.create_approle("gf-hook", ["gf-hook-read"])
    fields = _base(ready, login=role_id, password=secret_id, extra={"auth_type": "approle"})
    hook = VaultHook(conn(fields))

    _assert_read_and_masked(hook, path, value)
    assert redact(f"x {secret_id} y") == "x *** y"


def test_approle_auth_takes_the_role_id_extra_when_login_is_empty(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    ready.write_policy("gf-hook-read", READ_POLICY)
    role_id, secret_id = ready.create_approle("gf-hook", ["gf-hook-read"])
    extra = {"auth_type": "approle", "role_id": role_id, "auth_mount_point": "approle"}
    hook = VaultHook(conn(_base(ready, password=secret_id, extra=extra)))

    _assert_read_and_masked(hook, path, value)


def test_userpass_auth(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    ready.write_policy("gf-hook-read", READ_POLICY)
    password = f"pw-{uuid.uuid4().hex}"
    ready.create_user("gf-hook-user", password, ["gf-hook-read"])
    extra = {"auth_type": "userpass"}
    hook = VaultHook(conn(_base(ready, login="gf-hook-user", password=password, extra=extra)))

    _assert_read_and_masked(hook, path, value)


def test_jwt_auth_with_a_token_file(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str], tmp_path: Path
) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path, value = planted
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    mount = f"jwt-{uuid.uuid4().hex[:6]}"
    ready.request("POST", f"sys/auth/{mount}", json={"type": "jwt"})
    ready.request("POST", f"auth/{mount}/config", json={"jwt_validation_pubkeys": [public_pem]})
    ready.write_policy("gf-hook-read", READ_POLICY)
    ready.request(
        "POST",
        f"auth/{mount}/role/airflow",
        json={
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "token_policies": ["gf-hook-read"],
        },
    )
    now = int(time.time())
    claims = {"sub": "airflow-worker", "aud": "vault", "iat": now, "exp": now + 600}
    token_file = tmp_path / "jwt"
    token_file.write_text(jwt.encode(claims, key, algorithm="RS256"))
    extra = {
        "auth_type": "jwt",
        "jwt_role": "airflow",
        "jwt_token_path": str(token_file),
        "auth_mount_point": mount,
    }
    hook = VaultHook(conn(_base(ready, extra=extra)))

    assert isinstance(hook.get_config().auth, JWTAuth)
    _assert_read_and_masked(hook, path, value)


def test_guardflow_vault_connection_type_reads_the_same_way(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    token = ready.create_token(["root"])
    hook = VaultHook(conn(f"guardflow-vault://:{token}@127.0.0.1:{ready.port}/secret"))

    _assert_read_and_masked(hook, path, value)


def test_wrong_password_is_an_auth_error_without_the_password(
    ready: VaultServer, conn: Callable[..., str]
) -> None:
    ready.create_user("gf-hook-user2", f"pw-{uuid.uuid4().hex}", ["default"])
    wrong = f"wrong-{uuid.uuid4().hex}"
    extra = {"auth_type": "userpass"}
    hook = VaultHook(conn(_base(ready, login="gf-hook-user2", password=wrong, extra=extra)))

    with pytest.raises(VaultAuthError) as excinfo:
        hook.get_secret("gf-hook/any", "token")

    assert_secret_absent(wrong, excinfo.value)


# --- KV v1/v2, whole secrets, versions, references --------------------------------------------


def test_kv_v1_mount_from_schema_with_kv_engine_version(
    ready: VaultServer, conn: Callable[..., str]
) -> None:
    value = f"gf-kv1-{uuid.uuid4().hex}"
    ready.request("POST", "kv1/gf-hook/app", json={"token": value})
    token = ready.create_token(["root"])
    hook = VaultHook(conn(_token_uri(ready, token, mount="kv1", kv_engine_version="1")))

    _assert_read_and_masked(hook, "gf-hook/app", value)


def test_kv_v1_is_detected_when_kv_engine_version_is_absent(
    ready: VaultServer, conn: Callable[..., str]
) -> None:
    value = f"gf-kv1-{uuid.uuid4().hex}"
    ready.request("POST", "kv1/gf-hook/detected", json={"token": value})
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["root"]), mount="kv1")))

    _assert_read_and_masked(hook, "gf-hook/detected", value)


def test_whole_secret_values_are_all_masked(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["root"]))))

    secret = hook.get_secret(path)

    assert secret.reveal() == {"token": value, "user": "svc"}  # type: ignore[comparison-overlap]
    assert redact(value) == "***"
    assert_secret_absent(value, repr(secret), str(secret))


def test_kv2_version_is_read(ready: VaultServer, conn: Callable[..., str]) -> None:
    path = f"gf-hook/{uuid.uuid4().hex[:8]}"
    first, second = f"v1-{uuid.uuid4().hex}", f"v2-{uuid.uuid4().hex}"
    ready.request("POST", f"secret/data/{path}", json={"data": {"token": first}})
    ready.request("POST", f"secret/data/{path}", json={"data": {"token": second}})
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["root"]))))

    old = hook.get_secret(path, "token", version=1)

    assert isinstance(old, SecretValue) and old.reveal() == first


def test_reference_without_mount_uses_the_connection_mount(
    ready: VaultServer, conn: Callable[..., str]
) -> None:
    value = f"gf-kv1-{uuid.uuid4().hex}"
    ready.request("POST", "kv1/gf-hook/ref", json={"token": value})
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["root"]), mount="kv1")))

    found = hook.resolve("vault:///gf-hook/ref#token")

    assert isinstance(found, SecretValue) and found.reveal() == value


# --- failures ----------------------------------------------------------------------------------


def test_missing_path_is_secret_not_found(ready: VaultServer, conn: Callable[..., str]) -> None:
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["root"]))))

    with pytest.raises(SecretNotFoundError) as excinfo:
        hook.get_secret("gf-hook/never-written", "token")

    assert "gf-hook/never-written" in str(excinfo.value)


def test_missing_key_names_the_keys_there_but_no_value(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["root"]))))

    with pytest.raises(SecretKeyMissingError) as excinfo:
        hook.get_secret(path, "password")

    assert excinfo.value.available == ["token", "user"]
    assert_secret_absent(value, excinfo.value)


def test_permission_denied_names_the_path(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    hook = VaultHook(conn(_token_uri(ready, ready.create_token(["default"]))))

    with pytest.raises(VaultPermissionError) as excinfo:
        hook.get_secret(path, "token")

    assert f"secret/data/{path}" in str(excinfo.value)
    assert_secret_absent(value, excinfo.value)


def test_test_connection_reports_a_failed_login(
    ready: VaultServer, conn: Callable[..., str]
) -> None:
    bad = f"not-a-token-{uuid.uuid4().hex}"
    ok, message = VaultHook(conn(_token_uri(ready, bad))).test_connection()

    assert not ok
    assert_secret_absent(bad, message)


def test_test_connection_succeeds_with_a_valid_token(
    ready: VaultServer, conn: Callable[..., str]
) -> None:
    ok, _ = VaultHook(conn(_token_uri(ready, ready.create_token(["default"])))).test_connection()

    assert ok


# --- resolve_credential ----------------------------------------------------------------------


def test_literal_credential_is_returned_and_masked() -> None:
    literal = f"literal-{uuid.uuid4().hex}"

    assert resolve_credential(literal, vault_conn_id="unused") == literal
    assert redact(literal) == "***"


def test_reference_credential_is_read_from_vault(
    ready: VaultServer, planted: tuple[str, str], conn: Callable[..., str]
) -> None:
    path, value = planted
    conn_id = conn(_token_uri(ready, ready.create_token(["root"])))

    assert resolve_credential(f"vault://secret/{path}#token", vault_conn_id=conn_id) == value


def test_reference_credential_must_name_a_key() -> None:
    with pytest.raises(ConfigurationError, match="names no key"):
        resolve_credential("vault://secret/gf-hook/app", vault_conn_id="unused")
