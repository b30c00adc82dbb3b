"""Map a hashicorp-format Vault connection onto :class:`guardflow.secrets.VaultConfig`.

apache-airflow-providers-hashicorp's ``vault`` connection is accepted as is (same fields, same
extras), as is our ``guardflow_vault`` type with the same layout:

- ``host`` + ``port``: the server. The scheme is ``https`` when the ``use_tls`` extra is true (or
  the connection type is ``vaults``/``https``), else ``http``; a host written as a URL keeps its
  own scheme.
- ``schema``: the KV engine's mount point (default ``secret``), not a URL scheme.
- ``login`` / ``password`` by ``auth_type``: ``token``: password = token (else the ``token_path``
  extra, else ``VAULT_TOKEN``); ``approle``: login = role id (or the ``role_id`` extra),
  password = secret id; ``userpass``: login = username, password = password.
- extras: ``auth_type`` (default ``token``), ``auth_mount_point``, ``kv_engine_version`` (1 or 2;
  absent: detected from the mount), ``kubernetes_role``, ``kubernetes_jwt_path``, ``jwt_role``,
  ``jwt_token``, ``jwt_token_path``, ``token_path``, ``role_id``, ``use_tls``, ``namespace``,
  and ``client_kwargs`` (its ``namespace``, ``verify`` and ``timeout`` are used). guardflow adds
  ``kubernetes_audience``, ``verify`` (false, or a CA bundle path), ``ca_bundle`` and ``timeout``.

hashicorp's ``aws_iam``, ``gcp``, ``azure``, ``github``, ``ldap`` and ``radius`` auth types are
refused with a :class:`~guardflow.errors.ConfigurationError` naming the supported ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from guardflow_airflow.get_provider_info import VAULT_AUTH_TYPES

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from guardflow.secrets import VaultConfig

__all__ = [
    "CLIENT_KWARGS_USED",
    "KNOWN_EXTRAS",
    "connection_extras",
    "mask",
    "vault_config_from_connection",
]

# Auth types hashicorp's hook knows but guardflow's client does not serve.
_UNSUPPORTED_AUTH = ("aws_iam", "azure", "gcp", "github", "ldap", "radius")
_UNSUPPORTED_EXTRAS = (
    "region",
    "gcp_key_path",
    "gcp_keyfile_dict",
    "gcp_scopes",
    "azure_tenant_id",
    "azure_resource",
    "radius_host",
    "radius_port",
)
# Extras read from a connection (and hashicorp's for the refused auth types); others draw a warning.
KNOWN_EXTRAS = frozenset(
    (
        "auth_type",
        "auth_mount_point",
        "kv_engine_version",
        "role_id",
        "kubernetes_role",
        "kubernetes_jwt_path",
        "kubernetes_audience",
        "jwt_role",
        "jwt_token",
        "jwt_token_path",
        "token_path",
        "namespace",
        "use_tls",
        "verify",
        "ca_bundle",
        "timeout",
        "client_kwargs",
        *_UNSUPPORTED_EXTRAS,
    )
)
# hashicorp passes client_kwargs to hvac.Client; these are the ones VaultConfig has a field for.
CLIENT_KWARGS_USED = frozenset(("namespace", "verify", "timeout"))
_TLS_CONN_TYPES = ("vaults", "https")
_TRUE = {"true", "t", "y", "yes", "on", "1"}
_FALSE = {"false", "f", "n", "no", "off", "0"}


def _error(conn: Connection, problem: str) -> Exception:
    from guardflow.errors import ConfigurationError

    return ConfigurationError(f"Vault connection {conn.conn_id!r}: {problem}")


def connection_extras(conn: Connection) -> dict[str, Any]:
    """Return the extras without empty values, the legacy ``extra__<type>__`` prefix removed.

    The Airflow 3 UI stores form fields under their plain names; older tooling prefixes them. A
    plain key wins when both are present.
    """
    plain: dict[str, Any] = {}
    prefixed: dict[str, Any] = {}
    for key, value in conn.extra_dejson.items():
        if value is None or value == "":
            continue
        if key.startswith("extra__") and key.count("__") >= 2:
            prefixed[key.split("__", 2)[2]] = value
        else:
            plain[key] = value
    return {**prefixed, **plain}


def _flag(conn: Connection, name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise _error(conn, f"{name} must be true or false")


def _client_kwargs(conn: Connection, extras: Mapping[str, Any]) -> dict[str, Any]:
    raw = extras.get("client_kwargs", {})
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise _error(conn, "client_kwargs must be a JSON object") from None
    if not isinstance(raw, Mapping):
        raise _error(conn, "client_kwargs must be a JSON object")
    return dict(raw)


def _url(conn: Connection, extras: Mapping[str, Any]) -> str:
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        raise _error(conn, "host is empty; set it to the Vault server, e.g. vault.internal:8200")
    use_tls = _flag(conn, "use_tls", extras["use_tls"]) if "use_tls" in extras else None
    if "://" in host:
        parts = urlsplit(host)
        if use_tls is not None and use_tls != (parts.scheme == "https"):
            raise _error(conn, f"use_tls contradicts the host's {parts.scheme}:// scheme")
    else:
        tls = use_tls if use_tls is not None else conn.conn_type in _TLS_CONN_TYPES
        parts = urlsplit(f"{'https' if tls else 'http'}://{host}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _error(conn, "host must be a host name or an http(s) URL")
    if parts.username or parts.password:
        raise _error(conn, "host must not carry credentials; use login and password")
    netloc = parts.netloc
    try:
        has_port = parts.port is not None
    except ValueError:
        raise _error(conn, "host has an invalid port") from None
    if conn.port and not has_port:
        netloc = f"{netloc}:{conn.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _verify(conn: Connection, extras: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool | str:
    raw = extras.get("verify", kwargs.get("verify", True))
    if isinstance(raw, str) and raw.strip().lower() not in _TRUE | _FALSE:
        return raw  # hvac's convention: a string is a CA bundle path
    verify: bool | str = _flag(conn, "verify", raw)
    if verify and "ca_bundle" in extras:
        verify = str(extras["ca_bundle"])
    return verify


def _read_file(conn: Connection, name: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise _error(conn, f"cannot read the {name} file {path!r} ({exc.strerror})") from None


def _auth(conn: Connection, auth_type: str, extras: Mapping[str, Any]) -> Any:
    from pydantic import SecretStr

    from guardflow.secrets import AppRoleAuth, JWTAuth, KubernetesAuth, TokenAuth, UserpassAuth

    mount = {"mount": str(extras["auth_mount_point"])} if "auth_mount_point" in extras else {}
    if auth_type == "token":
        token = conn.password
        if not token and "token_path" in extras:
            token = _read_file(conn, "token_path", str(extras["token_path"]))
        token = token or os.environ.get("VAULT_TOKEN")
        if not token:
            raise _error(
                conn, "token auth needs the token as password, a token_path or VAULT_TOKEN"
            )
        mask(token)
        return TokenAuth(token=SecretStr(token))
    if auth_type in ("approle", "userpass"):
        login = conn.login or (extras.get("role_id") if auth_type == "approle" else None)
        if not login or not conn.password:
            needs = "role id in login" if auth_type == "approle" else "username in login"
            raise _error(conn, f"{auth_type} auth needs the {needs} and the password")
        mask(conn.password)
        if auth_type == "approle":
            return AppRoleAuth(role_id=str(login), secret_id=SecretStr(conn.password), **mount)
        return UserpassAuth(username=login, password=SecretStr(conn.password), **mount)
    if auth_type == "kubernetes":
        if "kubernetes_role" not in extras:
            raise _error(conn, "kubernetes auth needs the kubernetes_role extra")
        options = {
            k: str(extras[e])
            for k, e in (("jwt_path", "kubernetes_jwt_path"), ("audience", "kubernetes_audience"))
            if e in extras
        }
        return KubernetesAuth(role=str(extras["kubernetes_role"]), **options, **mount)
    if auth_type == "jwt":
        jwt, jwt_path = extras.get("jwt_token"), extras.get("jwt_token_path")
        if "jwt_role" not in extras or not (jwt or jwt_path):
            raise _error(conn, "jwt auth needs jwt_role and jwt_token or jwt_token_path extras")
        if jwt:
            mask(str(jwt))
        return JWTAuth(
            role=str(extras["jwt_role"]),
            jwt=SecretStr(str(jwt)) if jwt else None,
            jwt_path=None if jwt else str(jwt_path),
            **mount,
        )
    supported = ", ".join(VAULT_AUTH_TYPES)
    if auth_type in _UNSUPPORTED_AUTH:
        raise _error(
            conn,
            f"auth_type {auth_type!r} is not supported by guardflow; use one of {supported}, "
            "or apache-airflow-providers-hashicorp's VaultHook for this auth type",
        )
    raise _error(conn, f"unknown auth_type {auth_type!r}; use one of {supported}")


def vault_config_from_connection(conn: Connection) -> VaultConfig:
    """Build a :class:`guardflow.secrets.VaultConfig` from a hashicorp-format connection.

    Args:
        conn: A ``vault`` (apache-airflow-providers-hashicorp) or ``guardflow_vault`` connection.

    Returns:
        The validated configuration; credentials are ``SecretStr`` and already registered with
        Airflow's secrets masker.

    Raises:
        ConfigurationError: The host is missing, the auth type is not supported (the message
            names it and lists the supported ones), a credential is missing, or a field is
            invalid. Messages name fields, never their values.
    """
    from pydantic import ValidationError

    from guardflow.errors import ConfigurationError
    from guardflow.secrets import VaultConfig

    extras = connection_extras(conn)
    kwargs = _client_kwargs(conn, extras)
    data: dict[str, Any] = {
        "url": _url(conn, extras),
        "verify": _verify(conn, extras, kwargs),
        "kv_mount": (conn.schema or "").strip("/") or "secret",
        "auth": _auth(conn, str(extras.get("auth_type", "token")).strip().lower(), extras),
    }
    namespace = extras.get("namespace", kwargs.get("namespace"))
    if namespace:
        data["namespace"] = str(namespace)
    if "timeout" in extras or "timeout" in kwargs:
        data["timeout"] = extras.get("timeout", kwargs.get("timeout"))
    if "kv_engine_version" in extras:
        version = str(extras["kv_engine_version"]).strip()
        if version not in ("1", "2"):
            raise _error(conn, "kv_engine_version must be 1 or 2")
        data["kv_version"] = int(version)
    try:
        return VaultConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError.from_validation(
            exc, what=f"Vault connection {conn.conn_id!r}"
        ) from None


def mask(value: str) -> None:
    """Register ``value`` with Airflow's secrets masker (task and supervisor processes)."""
    from airflow.sdk.log import mask_secret

    # No name: a name that is not "sensitive" (say a key called "username") disables masking.
    mask_secret(value)
