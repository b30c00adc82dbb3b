"""SecretValue, Secret, SecretRef and VaultConfig: values never print, refs round-trip."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest
from pydantic import SecretStr

from guardflow.errors import ConfigurationError, GuardflowError
from guardflow.secrets import (
    AppRoleAuth,
    JWTAuth,
    Secret,
    SecretRef,
    SecretValue,
    TokenAuth,
    VaultConfig,
)
from guardflow.tables import json_default
from guardflow.testing.vault_server import assert_secret_absent

PLANTED = "planted-6b1f0c2e"


def test_secret_value_masks_str_repr_and_format() -> None:
    value = SecretValue(PLANTED)
    assert str(value) == "**********"
    assert repr(value) == "SecretValue('**********')"
    assert f"{value}|{value:>12}|{value!r}" == "**********|  **********|SecretValue('**********')"
    assert value.reveal() == PLANTED


def test_secret_value_never_reaches_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("test").warning(
        "token is %s (%r)", SecretValue(PLANTED), SecretValue(PLANTED)
    )
    assert "**********" in caplog.text
    assert_secret_absent(PLANTED, caplog.text)


def test_secret_value_equality_and_hash_use_the_value() -> None:
    assert SecretValue(PLANTED) == SecretValue(PLANTED)
    assert SecretValue(PLANTED) != SecretValue("other")
    assert SecretValue(PLANTED) != PLANTED  # never equal to the clear text
    assert len({SecretValue(PLANTED), SecretValue(PLANTED)}) == 1


def test_secret_value_refuses_pickling() -> None:
    with pytest.raises(GuardflowError, match="must not be persisted") as info:
        pickle.dumps(SecretValue(PLANTED))
    assert_secret_absent(PLANTED, str(info.value))


def test_secret_refuses_pickling_and_copies_keep_the_mask() -> None:
    secret = Secret({"password": PLANTED}, path="app/db", mount="secret")
    with pytest.raises(GuardflowError):
        pickle.dumps(secret)
    assert copy.deepcopy(SecretValue(PLANTED)).reveal() == PLANTED


def test_secret_repr_shows_keys_not_values() -> None:
    secret = Secret({"password": PLANTED, "user": "app"}, path="app/db", mount="secret", version=3)
    assert (
        repr(secret)
        == "Secret(path='app/db', mount='secret', version=3, keys=['password', 'user'])"
    )
    assert_secret_absent(
        PLANTED, str(secret), repr(secret), str(dict(secret)), list(secret.items())
    )
    assert secret.reveal() == {"password": PLANTED, "user": "app"}


def test_secret_is_read_only() -> None:
    secret = Secret({"k": "v"}, path="p")
    with pytest.raises(TypeError):
        secret["k"] = SecretValue("x")  # type: ignore[index]


def test_json_default_masks_secret_values() -> None:
    payload = {
        "token": SecretValue(PLANTED),
        "secret": Secret({"password": PLANTED}, path="p"),
        "pydantic": SecretStr(PLANTED),
        "set": {SecretValue(PLANTED)},
    }
    text = json.dumps(payload, default=json_default)
    assert json.loads(text)["secret"] == {"password": "**********"}
    assert_secret_absent(PLANTED, text)


@pytest.mark.parametrize(
    ("text", "mount", "path", "key", "version", "kv"),
    [
        ("vault://secret/app/db#password", "secret", "app/db", "password", None, None),
        ("vault://secret/app/db", "secret", "app/db", None, None, None),
        ("vault:///app/db#pw?mount=team/kv", "team/kv", "app/db", "pw", None, None),
        ("vault:///app/db?mount=team/kv&version=3#pw", "team/kv", "app/db", "pw", 3, None),
        ("vault://kv1/app#pw?kv=1", "kv1", "app", "pw", None, 1),
        ("vault:///app/db#pw", None, "app/db", "pw", None, None),
    ],
)
def test_ref_parses_and_round_trips(
    text: str, mount: str | None, path: str, key: str | None, version: int | None, kv: int | None
) -> None:
    ref = SecretRef.parse(text)
    assert (ref.mount, ref.path, ref.key, ref.version, ref.kv_version) == (
        mount,
        path,
        key,
        version,
        kv,
    )
    assert SecretRef.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "secret/app#k",
        "vault://secret",
        "vault://secret/app?version=x",
        "vault://s/a?kv=3",
        "vault://s/a?colour=red",
        "vault://s/a?mount=x",
    ],
)
def test_bad_refs_are_configuration_errors(text: str) -> None:
    with pytest.raises(ConfigurationError):
        SecretRef.parse(text)


def test_is_ref_only_for_vault_strings() -> None:
    assert SecretRef.is_ref("vault://secret/a#b")
    assert not SecretRef.is_ref("hvs.literal-token")
    assert not SecretRef.is_ref(None)


def test_config_from_env_with_token() -> None:
    config = VaultConfig.from_env(
        {"VAULT_ADDR": "http://127.0.0.1:8200/", "VAULT_TOKEN": PLANTED, "VAULT_NAMESPACE": "team"}
    )
    assert config.url == "http://127.0.0.1:8200"
    assert config.namespace == "team"
    assert isinstance(config.auth, TokenAuth)
    assert_secret_absent(PLANTED, repr(config), str(config))


def test_config_from_env_with_approle_and_tls_settings() -> None:
    config = VaultConfig.from_env(
        {
            "VAULT_ADDR": "https://vault:8200",
            "VAULT_ROLE_ID": "role",
            "VAULT_SECRET_ID": PLANTED,
            "VAULT_CACERT": "/etc/ca.pem",
        }
    )
    assert isinstance(config.auth, AppRoleAuth)
    assert config.verify == "/etc/ca.pem"
    skip = VaultConfig.from_env(
        {"VAULT_ADDR": "https://v", "VAULT_TOKEN": "t", "VAULT_SKIP_VERIFY": "true"}
    )
    assert skip.verify is False


def test_config_from_env_accepts_openbao_names() -> None:
    config = VaultConfig.from_env({"BAO_ADDR": "http://bao:8200", "BAO_TOKEN": "t"})
    assert config.url == "http://bao:8200"


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, "VAULT_ADDR"),
        ({"VAULT_ADDR": "http://v"}, "VAULT_TOKEN"),
        ({"VAULT_ADDR": "http://v", "VAULT_ROLE_ID": "r"}, "VAULT_SECRET_ID"),
        ({"VAULT_ADDR": "http://v", "VAULT_SECRET_ID": PLANTED}, "VAULT_ROLE_ID"),
    ],
)
def test_config_from_env_names_the_missing_variable(environ: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigurationError, match=missing) as info:
        VaultConfig.from_env(environ)
    assert_secret_absent(PLANTED, str(info.value))


def test_config_validation_errors_do_not_echo_input() -> None:
    with pytest.raises(ConfigurationError) as info:
        VaultConfig.from_env({"VAULT_ADDR": f"ftp://{PLANTED}", "VAULT_TOKEN": PLANTED})
    assert_secret_absent(PLANTED, str(info.value))


def test_auth_models_are_discriminated_by_method() -> None:
    config = VaultConfig.model_validate(
        {"url": "http://v", "auth": {"method": "approle", "role_id": "r", "secret_id": PLANTED}}
    )
    assert isinstance(config.auth, AppRoleAuth)
    assert_secret_absent(PLANTED, repr(config.auth), config.model_dump_json())


def test_jwt_auth_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        JWTAuth(role="r")
    with pytest.raises(ValueError, match="exactly one"):
        JWTAuth(role="r", jwt=SecretStr("a"), jwt_path="/x")
