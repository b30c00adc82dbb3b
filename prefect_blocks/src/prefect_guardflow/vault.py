"""Vault and OpenBao secrets in Prefect flows: credentials and secret blocks, read tasks.

:class:`VaultCredentials` is a credentials block (``get_client()`` gives guardflow's
:class:`~guardflow.secrets.VaultClient`); :class:`VaultSecret` nests it and points at one KV
secret or one key of it. The tasks :func:`read_vault_secret` / :func:`aread_vault_secret` read a
secret inside a flow. Whatever is read comes back as a :class:`~guardflow.secrets.SecretValue` or
:class:`~guardflow.secrets.Secret`, which print as ``**********``, refuse to be pickled into
Prefect's result storage, and are registered with :mod:`prefect_guardflow._redaction` so that
even a revealed value is masked in the run's logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from prefect import get_run_logger, task
from prefect.blocks.abstract import SecretBlock
from prefect.cache_policies import NONE
from pydantic import ConfigDict, Field

from guardflow.errors import ConfigurationError, SecretNotFoundError
from prefect_guardflow._links import DOCUMENTATION_URL, LOGO_URL
from prefect_guardflow._redaction import register_secret
from prefect_guardflow._runtime import retry_on_retryable_error
from prefect_guardflow._vault_credentials import VaultCredentials, location, read_ref

if TYPE_CHECKING:
    from guardflow.secrets import Secret, SecretRef, SecretValue, VaultClient

__all__ = [
    "VaultCredentials",
    "VaultSecret",
    "aread_vault_secret",
    "read_vault_secret",
    "resolve_credential",
]


class VaultSecret(SecretBlock):
    """One KV secret in Vault or OpenBao (or one key of it), read and written through guardflow.

    Values come back as guardflow's masked types: a :class:`~guardflow.secrets.SecretValue` when
    ``key`` is set, else a :class:`~guardflow.secrets.Secret` (a mapping of key names to values).

    Examples:
        Read the secret a saved block points at:
        ```python
        from prefect_guardflow.vault import VaultSecret

        secret_block = VaultSecret.load("BLOCK_NAME")
        password = secret_block.read_secret()
        connect(password=password.reveal())
        ```
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "Guardflow Vault Secret"
    _block_type_slug = "guardflow-vault-secret"
    _logo_url = LOGO_URL  # type: ignore[assignment]
    _documentation_url = DOCUMENTATION_URL  # type: ignore[assignment]

    vault_credentials: VaultCredentials = Field(
        default=..., description="The Vault server and how to log in to it."
    )
    path: str = Field(default=..., description="Path of the secret inside its mount.")
    mount: str | None = Field(
        default=None, description="KV mount of the secret (default: the credentials' kv_mount)."
    )
    key: str | None = Field(
        default=None, description="One key of the secret; empty means the whole secret."
    )
    kv_version: Literal[1, 2] | None = Field(
        default=None, description="KV engine version (1 or 2); empty uses the credentials'."
    )

    def ref(self, version: int | None = None) -> SecretRef:
        """Return the ``vault://`` reference of the secret this block points at.

        Args:
            version: A KV v2 version to pin; ``None`` means the latest.

        Returns:
            The reference (``str()`` gives ``vault://MOUNT/PATH#KEY``).
        """
        return location(
            self.path,
            self.key,
            mount=self.mount or self.vault_credentials.kv_mount,
            version=version,
            kv_version=self.kv_version or self.vault_credentials.kv_version,
        )

    def read_secret(self, *, version: int | None = None) -> SecretValue | Secret:  # type: ignore[override]
        """Read the secret (or its one key) from Vault.

        Prefect's abstract ``SecretBlock`` types the payload as ``bytes``; this block returns
        guardflow's masked types instead, because plain bytes print. Use
        :meth:`aread_secret` in async code.

        Args:
            version: A KV v2 version; ``None`` reads the latest.

        Returns:
            A :class:`~guardflow.secrets.SecretValue` when ``key`` is set, else a
            :class:`~guardflow.secrets.Secret`; both registered with the log mask.

        Raises:
            SecretNotFoundError: Nothing is stored at the path (or that version).
            SecretKeyMissingError: The secret has no such key (the error lists the key names).
            VaultPermissionError: The credentials' policies do not grant read on the path.
            VaultAuthError: Login failed.
            VaultUnreachableError: The server could not be reached.

        Examples:
            ```python
            password = VaultSecret.load("BLOCK_NAME").read_secret()
            ```
        """
        return read_ref(self.vault_credentials, self.ref(version))

    async def aread_secret(self, *, version: int | None = None) -> SecretValue | Secret:
        """Async twin of :meth:`read_secret` (the request runs in a worker thread).

        Args:
            version: A KV v2 version; ``None`` reads the latest.

        Returns:
            The value or the whole secret, as :meth:`read_secret` does.
        """
        return await asyncio.to_thread(self.read_secret, version=version)

    def write_secret(  # type: ignore[override]
        self, secret_data: str | bytes | SecretValue | Mapping[str, str | SecretValue]
    ) -> str:
        """Write to the secret this block points at; KV v2 keeps the earlier versions.

        A mapping replaces the whole secret. A single value needs ``key`` to be set: the other
        keys of the secret are read and written back unchanged (read-modify-write, so two
        writers at once may overwrite each other's key).

        Args:
            secret_data: A mapping of key names to values, or one value (``str``, UTF-8
                ``bytes`` or :class:`~guardflow.secrets.SecretValue`) for ``key``.

        Returns:
            The ``vault://`` reference to read it back with.

        Raises:
            ConfigurationError: A single value was given but the block has no ``key``.
            VaultPermissionError: The credentials' policies do not grant write on the path.

        Examples:
            ```python
            VaultSecret.load("BLOCK_NAME").write_secret({"user": "app", "password": new})
            ```
        """
        ref = self.ref()
        with self.vault_credentials.get_client() as client:
            if isinstance(secret_data, Mapping):
                data: dict[str, str | SecretValue] = dict(secret_data)
            else:
                if ref.key is None:
                    raise ConfigurationError(
                        f"VaultSecret block for {ref.path!r} has no key: pass a mapping of key "
                        "names to values to write the whole secret, or set the block's key"
                    )
                if isinstance(secret_data, bytes):
                    secret_data = secret_data.decode()
                data = _current(client, ref)
                data[ref.key] = secret_data
            register_secret(data)
            client.write(ref.path, data, mount=ref.mount, kv_version=ref.kv_version)
        return str(ref.model_copy(update={"version": None}))

    async def awrite_secret(
        self, secret_data: str | bytes | SecretValue | Mapping[str, str | SecretValue]
    ) -> str:
        """Async twin of :meth:`write_secret` (the request runs in a worker thread).

        Args:
            secret_data: A mapping of key names to values, or one value for ``key``.

        Returns:
            The ``vault://`` reference to read it back with.
        """
        return await asyncio.to_thread(self.write_secret, secret_data)


def _current(client: VaultClient, ref: SecretRef) -> dict[str, str | SecretValue]:
    """The secret's current keys, or nothing when it does not exist yet."""
    try:
        current = client.read(ref.path, mount=ref.mount, kv_version=ref.kv_version, use_cache=False)
    except SecretNotFoundError:
        return {}
    return dict(current)


def resolve_credential(
    value: SecretValue | str | None, *, credentials: VaultCredentials | None = None
) -> SecretValue | None:
    """Turn a credential argument into a masked value, reading it from Vault when it is a ref.

    A ``vault://MOUNT/PATH#KEY`` string is read with ``credentials`` (``None``: the ``VAULT_*``
    variables); any other string is taken as the literal credential. Either way the value is
    registered with the log mask before it is returned.

    Args:
        value: A :class:`~guardflow.secrets.SecretValue`, a ``vault://`` reference, a literal,
            or ``None``.
        credentials: How to reach Vault for a reference.

    Returns:
        The credential as a :class:`~guardflow.secrets.SecretValue`, or ``None`` for ``None``.

    Raises:
        ConfigurationError: The reference names a whole secret rather than one key.

    Examples:
        ```python
        token = resolve_credential("vault://secret/ml/endpoint#token")
        ```
    """
    from guardflow.secrets import SecretRef, SecretValue

    if value is None:
        return None
    if isinstance(value, str) and SecretRef.is_ref(value):
        ref = SecretRef.parse(value)
        if ref.key is not None:
            creds = credentials if credentials is not None else VaultCredentials.from_env()
            read = read_ref(creds, ref)
            if isinstance(read, SecretValue):  # always, for a reference with a key
                return read
        raise ConfigurationError(
            f"credential reference {value!r} names a whole secret; add the key: "
            "vault://MOUNT/PATH#KEY"
        )
    secret = SecretValue(value) if isinstance(value, str) else value
    register_secret(secret)
    return secret


_TASK_OPTIONS: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    # Only a server that is unreachable or sealed is worth another attempt.
    "retry_condition_fn": retry_on_retryable_error,
    # A secret must never be pickled into result storage (SecretValue refuses it anyway).
    "persist_result": False,
    "cache_policy": NONE,
}


@task(name="read_vault_secret", **_TASK_OPTIONS)
def read_vault_secret(
    path: str,
    key: str | None = None,
    *,
    credentials: VaultCredentials | None = None,
    mount: str | None = None,
    version: int | None = None,
    kv_version: Literal[1, 2] | None = None,
) -> SecretValue | Secret:
    """Read a KV secret, or one key of it, from Vault or OpenBao.

    The value is registered with the log mask before the task returns, so even
    ``logger.info(value.reveal())`` shows ``**********`` in the run's logs. The task retries
    (twice) only when the server is unreachable or sealed; its result is never persisted.

    Args:
        path: The secret's path inside its mount, or a ``vault://MOUNT/PATH#KEY`` reference.
        key: One key of the secret; ``None`` returns the whole secret.
        credentials: The server and login; ``None`` reads the ``VAULT_*`` variables.
        mount: The KV mount (default: the credentials' ``kv_mount``).
        version: A KV v2 version; ``None`` reads the latest.
        kv_version: ``1`` or ``2`` to skip detecting the mount's KV version.

    Returns:
        A :class:`~guardflow.secrets.SecretValue` when a key is given, else a
        :class:`~guardflow.secrets.Secret`.

    Raises:
        SecretNotFoundError: Nothing is stored at the path (or that version).
        SecretKeyMissingError: The secret has no such key (the error lists the key names).
        SecretEngineNotMountedError: No KV engine is mounted at the mount.
        VaultPermissionError: The policies do not grant read on the path.
        VaultAuthError: Login failed.
        ConfigurationError: Credentials are incomplete, or ``VAULT_ADDR`` is not set.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.vault import VaultCredentials, read_vault_secret

        @flow
        def nightly() -> None:
            credentials = VaultCredentials.load("BLOCK_NAME")
            password = read_vault_secret("app/db", "password", credentials=credentials)
            connect(password=password.reveal())
        ```
    """
    creds = credentials if credentials is not None else VaultCredentials.from_env()
    ref = _with_mount(
        location(path, key, mount=mount, version=version, kv_version=kv_version), creds
    )
    value = read_ref(creds, ref)
    _log_read(ref, value)
    return value


@task(name="aread_vault_secret", **_TASK_OPTIONS)
async def aread_vault_secret(
    path: str,
    key: str | None = None,
    *,
    credentials: VaultCredentials | None = None,
    mount: str | None = None,
    version: int | None = None,
    kv_version: Literal[1, 2] | None = None,
) -> SecretValue | Secret:
    """Async twin of :func:`read_vault_secret`: same arguments, result and masking.

    Args:
        path: The secret's path inside its mount, or a ``vault://`` reference.
        key: One key of the secret; ``None`` returns the whole secret.
        credentials: The server and login; ``None`` reads the ``VAULT_*`` variables.
        mount: The KV mount (default: the credentials' ``kv_mount``).
        version: A KV v2 version; ``None`` reads the latest.
        kv_version: ``1`` or ``2`` to skip detecting the mount's KV version.

    Returns:
        A :class:`~guardflow.secrets.SecretValue` or a :class:`~guardflow.secrets.Secret`.

    Examples:
        ```python
        @flow
        async def nightly() -> None:
            token = await aread_vault_secret("vault://secret/ml/endpoint#token")
        ```
    """
    creds = credentials if credentials is not None else VaultCredentials.from_env()
    ref = _with_mount(
        location(path, key, mount=mount, version=version, kv_version=kv_version), creds
    )
    value = await asyncio.to_thread(read_ref, creds, ref)
    _log_read(ref, value)
    return value


def _with_mount(ref: SecretRef, credentials: VaultCredentials) -> SecretRef:
    """``ref`` with the credentials' KV mount filled in, so the log line names the mount."""
    return ref if ref.mount else ref.model_copy(update={"mount": credentials.kv_mount})


def _log_read(ref: SecretRef, value: SecretValue | Secret) -> None:
    """One line naming what was read: the location, the key names, never a value."""
    from guardflow.secrets import Secret

    if isinstance(value, Secret):
        get_run_logger().info("Read %s from Vault (keys: %s)", ref, ", ".join(sorted(value)))
    else:
        get_run_logger().info("Read %s from Vault", ref)
