"""InferenceHook: maps a ``guardflow_inference`` Airflow connection onto guardflow's config.

The hook is deliberately thin (DESIGN principle 2): it reads the connection, validates it into
:class:`guardflow.inference.EndpointConfig` and :class:`guardflow.inference.BatchPolicy`, and
registers the token with Airflow's secrets masker. Batching, retries, resume and audit all live in
the core. The connection is read lazily, never in ``__init__``, so building the hook at DAG level
costs nothing and touches no secrets backend.

Connection layout:

- ``host``: base URL (``http://127.0.0.1:5001``) or a bare host name; ``port`` and ``schema``
  (the URL scheme, ``http`` or ``https``) complete a bare host.
- ``password``: bearer token (optional), or a ``vault://MOUNT/PATH#KEY`` reference resolved at
  run time through the hook's Vault connection (``vault_conn_id``).
- ``extra`` / connection form fields: ``protocol``, ``model_name``, ``model_version``,
  ``api_name``, ``batch_size``, ``concurrency``, ``requests_per_second``, ``connect_timeout``,
  ``read_timeout``, ``write_timeout``, ``verify_tls``, ``ca_bundle``, ``ready_path``,
  ``v2_input_name``, ``v2_output_name``, ``json_request_key``, ``json_response_path``; plus
  ``headers``, ``pool_timeout``, ``prompt_column``, ``system_prompt`` and ``openai_params`` in
  the extra JSON.

Examples:
    ``AIRFLOW_CONN_GUARDFLOW_INFERENCE_DEFAULT='guardflow-inference://127.0.0.1:5001/?protocol=mlflow'``
    or, as JSON, ``{"conn_type": "guardflow_inference", "host": "https://models.internal",
    "password": "...", "extra": {"protocol": "v2", "model_name": "fraud"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from guardflow_airflow._secrets import is_vault_ref
from guardflow_airflow.get_provider_info import INFERENCE_CONN_TYPE, PROTOCOLS

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from guardflow.inference import InferenceClient
    from guardflow.inference.config import BatchPolicy, EndpointConfig, InferenceConfig

__all__ = ["InferenceHook", "batch_policy_from_connection", "endpoint_config_from_connection"]

_PREFIX = f"extra__{INFERENCE_CONN_TYPE}__"
_ENDPOINT_KEYS = (
    "model_name",
    "model_version",
    "api_name",
    "json_request_key",
    "json_response_path",
    "prompt_column",
    "system_prompt",
    "ready_path",
    "v2_input_name",
    "v2_output_name",
)
_JSON_OBJECT_KEYS = ("headers", "openai_params")
_TIMEOUT_KEYS = {
    "connect_timeout": "connect",
    "read_timeout": "read",
    "write_timeout": "write",
    "pool_timeout": "pool",
}
_BATCH_KEYS = ("batch_size", "concurrency", "requests_per_second")
_OTHER_KEYS = ("protocol", "verify_tls", "ca_bundle")
_KNOWN_KEYS = frozenset(
    (*_ENDPOINT_KEYS, *_JSON_OBJECT_KEYS, *_TIMEOUT_KEYS, *_BATCH_KEYS, *_OTHER_KEYS)
)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _config_error(conn: Connection, problem: str) -> Exception:
    from guardflow.errors import ConfigurationError

    return ConfigurationError(f"connection {conn.conn_id!r} ({INFERENCE_CONN_TYPE}): {problem}")


def _extra(conn: Connection) -> dict[str, Any]:
    """Return the extra fields without the legacy ``extra__<type>__`` prefix and empty values.

    The Airflow 3 UI stores form fields under their plain names; connections created by older
    tooling use the prefixed form. A plain key wins when both are present.
    """
    plain: dict[str, Any] = {}
    prefixed: dict[str, Any] = {}
    for key, value in conn.extra_dejson.items():
        if value is None or value == "":
            continue
        if key.startswith(_PREFIX):
            prefixed[key[len(_PREFIX) :]] = value
        else:
            plain[key] = value
    return {**prefixed, **plain}


def _as_bool(conn: Connection, name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _config_error(conn, f"{name} must be true or false")


def _as_object(conn: Connection, name: str, value: Any) -> dict[str, Any]:
    # Values from a connection URI's query string arrive as JSON text.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _config_error(conn, f"{name} must be a JSON object") from None
    if not isinstance(value, Mapping):
        raise _config_error(conn, f"{name} must be a JSON object")
    return dict(value)


def _base_url(conn: Connection) -> str:
    host = (conn.host or "").strip()
    if not host:
        raise _config_error(
            conn, "host is empty; set it to the model server's base URL, e.g. http://127.0.0.1:5001"
        )
    if "://" not in host:
        scheme = (conn.schema or "http").strip().lower()
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https"):
        raise _config_error(conn, "the URL scheme must be http or https")
    if not parts.hostname:
        raise _config_error(conn, "host has no host name")
    if parts.username or parts.password:
        raise _config_error(conn, "host must not carry credentials; put the token in the password")
    netloc = parts.netloc
    try:
        has_port = parts.port is not None
    except ValueError:
        raise _config_error(conn, "host has an invalid port") from None
    if conn.port and not has_port:
        netloc = f"{netloc}:{conn.port}"
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


def _validation_problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return type(exc).__name__
    # Never echo input values: a bad field could hold a secret pasted into the wrong box.
    parts = [
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        for err in errors(include_url=False, include_input=False)
    ]
    return "; ".join(parts)


def endpoint_config_from_connection(conn: Connection, **overrides: Any) -> EndpointConfig:
    """Build an :class:`~guardflow.inference.config.EndpointConfig` from a connection.

    Args:
        conn: A ``guardflow_inference`` connection.
        **overrides: EndpointConfig fields that take precedence over the connection's values
            (e.g. ``prompt_column`` set by an operator).

    Returns:
        The validated endpoint configuration; the token (if any) is a ``SecretStr``.

    Raises:
        ConfigurationError: The connection has no usable host, an unknown protocol or an invalid
            field. The message names the field, never its value.
    """
    from pydantic import SecretStr, ValidationError

    from guardflow.inference.config import EndpointConfig

    extra = _extra(conn)
    protocol = str(extra.get("protocol", "mlflow")).strip().lower()
    if protocol not in PROTOCOLS:
        raise _config_error(
            conn, f"protocol {protocol!r} is not supported; use one of {', '.join(PROTOCOLS)}"
        )
    data: dict[str, Any] = {"url": _base_url(conn), "protocol": protocol}
    data.update({key: extra[key] for key in _ENDPOINT_KEYS if key in extra})
    data.update(
        {key: _as_object(conn, key, extra[key]) for key in _JSON_OBJECT_KEYS if key in extra}
    )
    timeouts = {field: extra[key] for key, field in _TIMEOUT_KEYS.items() if key in extra}
    if timeouts:
        data["timeouts"] = timeouts
    verify: bool | str = _as_bool(conn, "verify_tls", extra.get("verify_tls", True))
    if verify and "ca_bundle" in extra:
        verify = str(extra["ca_bundle"])
    data["verify"] = verify
    if conn.password:
        data["token"] = SecretStr(conn.password)
    data.update(overrides)
    try:
        return EndpointConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(conn, _validation_problem(exc)) from None


def batch_policy_from_connection(conn: Connection, **overrides: Any) -> BatchPolicy:
    """Build a :class:`~guardflow.inference.config.BatchPolicy` from a connection.

    Args:
        conn: A ``guardflow_inference`` connection.
        **overrides: ``batch_size``, ``concurrency`` or ``requests_per_second`` values that take
            precedence over the connection's (``None`` values are ignored).

    Returns:
        The validated batching policy (defaults where the connection says nothing).

    Raises:
        ConfigurationError: A batching field is invalid.
    """
    from pydantic import ValidationError

    from guardflow.inference.config import BatchPolicy

    extra = _extra(conn)
    data = {key: extra[key] for key in _BATCH_KEYS if key in extra}
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return BatchPolicy.model_validate(data)
    except ValidationError as exc:
        raise _config_error(conn, _validation_problem(exc)) from None


class InferenceHook(BaseHook):
    """Reads a ``guardflow_inference`` connection and turns it into guardflow configuration.

    Args:
        guardflow_conn_id: The connection id (default ``guardflow_inference_default``).
        vault_conn_id: The Vault connection resolving a ``vault://`` reference in the password.
        **kwargs: Passed to :class:`airflow.sdk.BaseHook` (``logger_name``).

    Examples:
        >>> hook = InferenceHook()  # reads nothing yet
        >>> hook.guardflow_conn_id
        'guardflow_inference_default'
    """

    conn_name_attr = "guardflow_conn_id"
    default_conn_name = "guardflow_inference_default"
    conn_type = INFERENCE_CONN_TYPE
    hook_name = "guardflow Inference"

    def __init__(
        self,
        guardflow_conn_id: str = default_conn_name,
        vault_conn_id: str = "vault_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.guardflow_conn_id = guardflow_conn_id
        self.vault_conn_id = vault_conn_id
        self._connection: Connection | None = None
        self._token: str | None = None

    @property
    def connection(self) -> Connection:
        """The Airflow connection, fetched on first use and cached for the hook's lifetime."""
        if self._connection is None:
            conn = self.get_connection(self.guardflow_conn_id)
            if conn.password and not is_vault_ref(conn.password):
                # Airflow masks connection passwords it fetches itself; registering the token
                # again covers connections handed over from elsewhere (hooks built in tests).
                from airflow.sdk.log import mask_secret

                mask_secret(conn.password, name="token")
            unknown = sorted(set(_extra(conn)) - _KNOWN_KEYS)
            if unknown:
                self.log.warning(
                    "Connection %r: ignoring unknown extra fields %s", conn.conn_id, unknown
                )
            self._connection = conn
        return self._connection

    def get_conn(self) -> EndpointConfig:
        """Return the endpoint configuration (Airflow's generic hook entry point)."""
        return self.get_endpoint_config()

    def get_endpoint_config(self, **overrides: Any) -> EndpointConfig:
        """Return the connection as an ``EndpointConfig``.

        Args:
            **overrides: Endpoint fields that take precedence over the connection's values.

        Raises:
            ConfigurationError: The connection is invalid.
            SecretsError: The password is a ``vault://`` reference Vault could not resolve.
        """
        password = self.connection.password
        if "token" not in overrides and is_vault_ref(password):
            from pydantic import SecretStr

            from guardflow_airflow._secrets import resolve_credential

            if self._token is None:
                self._token = resolve_credential(password, vault_conn_id=self.vault_conn_id)
            overrides["token"] = SecretStr(self._token) if self._token else None
        return endpoint_config_from_connection(self.connection, **overrides)

    def get_batch_policy(self, **overrides: Any) -> BatchPolicy:
        """Return the connection's batching policy, with non-``None`` overrides applied.

        Raises:
            ConfigurationError: A batching field is invalid.
        """
        return batch_policy_from_connection(self.connection, **overrides)

    def get_inference_config(
        self,
        *,
        endpoint_options: Mapping[str, Any] | None = None,
        batching_options: Mapping[str, Any] | None = None,
        **step: Any,
    ) -> InferenceConfig:
        """Return a full ``InferenceConfig`` for one step.

        Args:
            endpoint_options: Endpoint overrides (``prompt_column``, ``headers``...).
            batching_options: Batching overrides (``batch_size``, ``concurrency``...).
            **step: Other ``InferenceConfig`` fields: ``retry``, ``failure``, ``key_column``,
                ``input_columns``, ``prediction_column``, ``probe``.

        Raises:
            ConfigurationError: The connection or a step option is invalid.
        """
        from pydantic import ValidationError

        from guardflow.errors import ConfigurationError
        from guardflow.inference.config import InferenceConfig

        endpoint = self.get_endpoint_config(**dict(endpoint_options or {}))
        batching = self.get_batch_policy(**dict(batching_options or {}))
        try:
            return InferenceConfig.model_validate(
                {"endpoint": endpoint, "batching": batching, **step}
            )
        except ValidationError as exc:
            raise ConfigurationError(
                f"invalid inference options for connection {self.guardflow_conn_id!r}: "
                f"{_validation_problem(exc)}"
            ) from None

    def get_client(self, **kwargs: Any) -> InferenceClient:
        """Return a :class:`guardflow.inference.InferenceClient` for the connection's endpoint.

        The connection's request-rate cap applies unless ``requests_per_second`` is given.

        Args:
            **kwargs: Passed to ``InferenceClient`` (``retry``, ``transport``...).

        Raises:
            ConfigurationError: The connection is invalid.
        """
        from guardflow.inference import InferenceClient

        kwargs.setdefault("requests_per_second", self.get_batch_policy().requests_per_second)
        return InferenceClient(self.get_endpoint_config(), **kwargs)

    def test_connection(self) -> tuple[bool, str]:
        """Probe the model server's readiness (the UI's "Test" button).

        Returns:
            ``(True, message)`` when the server and model are ready, else ``(False, reason)``.
        """
        from guardflow.errors import GuardflowError

        try:
            with self.get_client() as client:
                client.check_ready()
        except GuardflowError as exc:
            return False, str(exc)
        return True, "model server is ready"
