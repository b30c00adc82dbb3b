"""Credentials that may be written as ``vault://`` references, resolved at execute time.

Operators and hooks that take a credential (the inference token first) accept either a literal or
a reference such as ``vault://secret/models/fraud#token``. The reference is what the DAG file, the
serialized DAG and the connection store; the value exists only inside ``execute``, registered with
Airflow's secrets masker before anything can log it.
"""

from __future__ import annotations

__all__ = ["is_vault_ref", "resolve_credential"]

_REF_PREFIX = "vault://"


def is_vault_ref(value: object) -> bool:
    """Return whether ``value`` is a ``vault://`` reference (cheap: imports nothing).

    Examples:
        >>> is_vault_ref("vault://secret/models/fraud#token"), is_vault_ref("s3cr3t")
        (True, False)
    """
    return isinstance(value, str) and value.startswith(_REF_PREFIX)


def resolve_credential(value: str | None, *, vault_conn_id: str) -> str | None:
    """Return the credential ``value`` stands for: a literal as is, a reference read from Vault.

    Either way the value is registered with Airflow's secrets masker before it is returned. A
    reference must name one key (``#key``): a credential is one string.

    Args:
        value: A literal credential, a ``vault://MOUNT/PATH#KEY`` reference (``vault:///PATH#KEY``
            uses the Vault connection's mount), or ``None``.
        vault_conn_id: The Vault connection used to resolve references (hashicorp's ``vault``
            format or ``guardflow_vault``).

    Returns:
        The credential, or ``None`` when ``value`` is ``None`` or empty.

    Raises:
        ConfigurationError: The reference names no key, cannot be parsed, or the Vault
            connection is missing or invalid.
        SecretsError: Vault could not serve the secret (the subclass says why).

    Examples:
        >>> resolve_credential(None, vault_conn_id="vault_default") is None
        True
        >>> resolve_credential("vault://secret/models/fraud#token", vault_conn_id="vault_default")
        ... # doctest: +SKIP
    """
    if not value:
        return None
    from airflow.sdk.log import mask_secret

    if not is_vault_ref(value):
        mask_secret(value)
        return value

    from guardflow.errors import ConfigurationError
    from guardflow.secrets import SecretRef, SecretValue
    from guardflow_airflow.hooks.vault import VaultHook

    ref = SecretRef.parse(value)
    if ref.key is None:
        raise ConfigurationError(
            f"the credential reference {value!r} names no key; add one, e.g. {value}#token"
        )
    hook = VaultHook(vault_conn_id=vault_conn_id)
    try:
        found = hook.resolve(ref)
    finally:
        hook.close()
    if not isinstance(found, SecretValue):  # pragma: no cover - a keyed ref gives one value
        raise ConfigurationError(f"the credential reference {value!r} did not name one value")
    return found.reveal()  # the hook registered it with the secrets masker already
