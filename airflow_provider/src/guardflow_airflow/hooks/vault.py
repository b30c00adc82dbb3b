"""VaultHook: reads secrets from Vault or OpenBao through a connection users already have.

The hook accepts apache-airflow-providers-hashicorp's ``vault`` connection as is (same fields,
same extras), as well as our own ``guardflow_vault`` type with the same layout. The mapping onto
:class:`guardflow.secrets.VaultConfig` is described in
:mod:`guardflow_airflow.hooks._vault_connection`: ``schema`` is the KV mount point, and
``login``/``password`` hold the credentials ``auth_type`` needs.
Authentication, caching, lease renewal and the error tree live in the core
:class:`guardflow.secrets.VaultClient` (DESIGN principle 2). The connection is read lazily, never
in ``__init__``: building the hook at DAG level costs nothing and touches no secrets backend.
Every value the hook reads is registered with Airflow's secrets masker before it is returned.

Examples:
    ``AIRFLOW_CONN_VAULT_DEFAULT='vault://:s.mytoken@vault.internal:8200/secret?use_tls=true'``
    or ``{"conn_type": "vault", "host": "vault.internal", "port": 8200, "schema": "kv",
    "login": "<role id>", "password": "<secret id>", "extra": {"auth_type": "approle"}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from guardflow_airflow.get_provider_info import VAULT_CONN_TYPE
from guardflow_airflow.hooks._vault_connection import (
    CLIENT_KWARGS_USED,
    KNOWN_EXTRAS,
    connection_extras,
    mask,
    vault_config_from_connection,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from guardflow.secrets import Secret, SecretRef, SecretValue, VaultClient, VaultConfig

__all__ = ["VaultHook", "vault_config_from_connection"]


class VaultHook(BaseHook):
    """Reads secrets from Vault or OpenBao through a hashicorp-format Airflow connection.

    Args:
        vault_conn_id: The connection id (default ``vault_default``); its type may be ``vault``
            (apache-airflow-providers-hashicorp) or ``guardflow_vault``.
        **kwargs: Passed to :class:`airflow.sdk.BaseHook` (``logger_name``).

    Examples:
        >>> hook = VaultHook()  # reads nothing yet
        >>> hook.vault_conn_id
        'vault_default'
        >>> hook.get_secret("models/fraud", "token")  # doctest: +SKIP
        SecretValue('**********')
    """

    conn_name_attr = "vault_conn_id"
    default_conn_name = "vault_default"
    conn_type = VAULT_CONN_TYPE
    hook_name = "guardflow Vault"

    def __init__(self, vault_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vault_conn_id = vault_conn_id
        self._connection: Connection | None = None
        self._client: VaultClient | None = None

    @property
    def connection(self) -> Connection:
        """The Airflow connection, fetched on first use.

        Raises:
            ConfigurationError: No connection has this id.
        """
        if self._connection is None:
            from guardflow_airflow._compat import AirflowNotFoundException

            try:
                conn = self.get_connection(self.vault_conn_id)
            except AirflowNotFoundException:
                from guardflow.errors import ConfigurationError

                raise ConfigurationError(
                    f"Vault connection {self.vault_conn_id!r} is not defined; create it (type "
                    f"{VAULT_CONN_TYPE} or hashicorp's vault) or pass another vault_conn_id"
                ) from None
            extras = connection_extras(conn)
            unknown = sorted(set(extras) - KNOWN_EXTRAS)
            kwargs = extras.get("client_kwargs")
            if isinstance(kwargs, dict):
                unknown += [f"client_kwargs.{k}" for k in sorted(set(kwargs) - CLIENT_KWARGS_USED)]
            if unknown:
                self.log.warning("Vault connection %r: ignoring extras %s", conn.conn_id, unknown)
            self._connection = conn
        return self._connection

    def get_config(self) -> VaultConfig:
        """Return the connection as a :class:`guardflow.secrets.VaultConfig`.

        Raises:
            ConfigurationError: The connection is invalid or uses an unsupported auth type.
        """
        return vault_config_from_connection(self.connection)

    def get_client(self) -> VaultClient:
        """Return the :class:`guardflow.secrets.VaultClient` (built once per hook).

        The client shares guardflow's process-wide cache, so tasks in one worker reading the same
        path send one request while the secret's TTL lasts.

        Raises:
            ConfigurationError: The connection is invalid.
        """
        if self._client is None:
            from guardflow.secrets import VaultClient

            self._client = VaultClient(self.get_config())
        return self._client

    def get_conn(self) -> VaultClient:
        """Return the Vault client (Airflow's generic hook entry point)."""
        return self.get_client()

    def get_secret(
        self,
        path: str,
        key: str | None = None,
        *,
        mount: str | None = None,
        version: int | None = None,
    ) -> SecretValue | Secret:
        """Read a KV secret, or one key of it; values are masked in Airflow's logs first.

        Args:
            path: The secret's path inside its mount (``models/fraud``).
            key: One key of the secret; ``None`` returns the whole secret.
            mount: The KV mount; default the connection's ``schema`` (``secret``).
            version: A KV v2 version; default the latest.

        Returns:
            A :class:`~guardflow.secrets.SecretValue` for a key, else a
            :class:`~guardflow.secrets.Secret`; neither prints its values.

        Raises:
            SecretsError: The subclass says what failed (unreachable, sealed, auth, permission
                denied, path or key missing, engine not mounted).
        """
        client = self.get_client()
        if key is None:
            secret = client.read(path, mount=mount, version=version)
            return self._masked(secret)
        return self._masked(client.read_key(path, key, mount=mount, version=version))

    def resolve(self, ref: str | SecretRef) -> SecretValue | Secret:
        """Resolve a ``vault://`` reference (see :class:`guardflow.secrets.SecretRef`).

        ``vault://MOUNT/PATH#KEY`` names its mount; ``vault:///PATH#KEY`` uses the connection's.

        Returns:
            A ``SecretValue`` when the reference names a key, else a ``Secret``.

        Raises:
            ConfigurationError: The reference cannot be parsed.
            SecretsError: The secret could not be read.
        """
        return self._masked(self.get_client().get(ref))

    def close(self) -> None:
        """Close the client: stop lease renewal and revoke leases it was asked to revoke."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def test_connection(self) -> tuple[bool, str]:
        """Log in to the server (the UI's "Test" button).

        Returns:
            ``(True, message)`` when the server answers and the login succeeds, else
            ``(False, reason)``; the reason never holds a credential.
        """
        from guardflow.errors import GuardflowError

        try:
            authenticated = bool(self.get_client().hvac.is_authenticated())
        except GuardflowError as exc:
            return False, str(exc)
        finally:
            self.close()
        if not authenticated:
            return False, "Vault rejected the credentials"
        return True, "logged in to Vault"

    @staticmethod
    def _masked(found: SecretValue | Secret) -> SecretValue | Secret:
        from guardflow.secrets import SecretValue

        if isinstance(found, SecretValue):
            mask(found.reveal())
        else:
            for value in found.reveal().values():
                mask(value)
        return found
