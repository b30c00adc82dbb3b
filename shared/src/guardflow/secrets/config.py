"""Where the Vault server is and how to talk to it: :class:`VaultConfig`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardflow.errors import ConfigurationError
from guardflow.secrets.auth import AppRoleAuth, AuthMethod, TokenAuth

__all__ = ["VaultConfig"]

_FALSY = {"", "0", "false", "no", "off"}


class VaultConfig(BaseModel):
    """Connection settings of a :class:`~guardflow.secrets.VaultClient` (Vault or OpenBao).

    Args:
        url: The server address, e.g. ``https://vault.example.com:8200``.
        namespace: The namespace every request goes to (Vault Enterprise, OpenBao 2.x).
        verify: ``True`` to verify TLS with the system CAs, a path to a CA bundle, or ``False``.
        timeout: Seconds per request.
        auth: How to log in: one of :class:`TokenAuth`, :class:`AppRoleAuth`,
            :class:`KubernetesAuth`, :class:`JWTAuth`, :class:`UserpassAuth`.
        kv_mount: The KV mount used when a read names none.
        kv_version: ``1`` or ``2``; ``None`` detects each mount's version (falls back to 2 when the
            token may not look it up).
        cache_ttl: Seconds a secret without a lease or TTL stays in the cache.
        renew_fraction: Leases and the client's token are renewed once this share of their
            duration has passed.

    Examples:
        >>> config = VaultConfig(url="http://127.0.0.1:8200", auth=TokenAuth(token="hvs.x"))
        >>> config.kv_mount
        'secret'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: str
    namespace: str | None = None
    verify: bool | str = True
    timeout: float = Field(default=10.0, gt=0)
    auth: AuthMethod
    kv_mount: str = "secret"
    kv_version: Literal[1, 2] | None = None
    cache_ttl: float = Field(default=300.0, ge=0)
    renew_fraction: float = Field(default=2 / 3, gt=0, lt=1)

    @field_validator("url")
    @classmethod
    def _clean_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("the Vault address must start with http:// or https://")
        return value

    @field_validator("kv_mount")
    @classmethod
    def _clean_mount(cls, value: str) -> str:
        value = value.strip("/")
        if not value:
            raise ValueError("kv_mount must not be empty")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> VaultConfig:
        """Build a config from the standard Vault variables.

        Reads ``VAULT_ADDR``; ``VAULT_TOKEN``, or ``VAULT_ROLE_ID`` with ``VAULT_SECRET_ID``
        (AppRole; ``VAULT_APPROLE_MOUNT`` for another mount); ``VAULT_NAMESPACE``,
        ``VAULT_CACERT`` and ``VAULT_SKIP_VERIFY``. OpenBao's ``BAO_*`` spellings are accepted
        when the ``VAULT_*`` one is unset.

        Args:
            environ: The variables to read; ``os.environ`` by default.
            **overrides: Other :class:`VaultConfig` fields (``kv_mount``, ``timeout``...).

        Returns:
            The config.

        Raises:
            ConfigurationError: A required variable is missing or a value is invalid (the message
                names the variable, never its value).
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"VAULT_{name}") or env.get(f"BAO_{name}")
            return value or None

        url = get("ADDR")
        if url is None:
            raise ConfigurationError(
                "VAULT_ADDR is not set; export VAULT_ADDR=https://your-vault:8200"
            )
        token, role_id, secret_id = get("TOKEN"), get("ROLE_ID"), get("SECRET_ID")
        auth: TokenAuth | AppRoleAuth
        if role_id is not None or secret_id is not None:
            if role_id is None or secret_id is None:
                missing = "VAULT_ROLE_ID" if role_id is None else "VAULT_SECRET_ID"
                raise ConfigurationError(
                    f"{missing} is not set; AppRole login needs both VAULT_ROLE_ID and "
                    "VAULT_SECRET_ID"
                )
            auth = AppRoleAuth.model_validate(
                {"role_id": role_id, "secret_id": secret_id, "mount": get("APPROLE_MOUNT")}
                if get("APPROLE_MOUNT")
                else {"role_id": role_id, "secret_id": secret_id}
            )
        elif token is not None:
            auth = TokenAuth.model_validate({"token": token})
        else:
            raise ConfigurationError(
                "VAULT_TOKEN is not set; export VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID "
                "for AppRole login"
            )
        verify: bool | str = True
        skip = get("SKIP_VERIFY")
        if skip is not None and skip.strip().lower() not in _FALSY:
            verify = False
        elif get("CACERT") is not None:
            verify = str(get("CACERT"))
        fields: dict[str, Any] = {"url": url, "auth": auth, "verify": verify}
        if get("NAMESPACE") is not None:
            fields["namespace"] = get("NAMESPACE")
        fields.update(overrides)
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise ConfigurationError.from_validation(
                exc, what="Vault settings from VAULT_* variables"
            ) from exc

    def cache_scope(self) -> tuple[str, str, str]:
        """``(url, namespace, auth identity)``: the part of a cache key fixed by this config."""
        return (self.url, self.namespace or "", self.auth.identity())
