"""Secrets from HashiCorp Vault and OpenBao, for any orchestrator.

Values read are :class:`SecretValue` objects that print as ``'**********'`` until revealed;
``vault://`` references (:class:`SecretRef`) stand in for credentials and are resolved when a
step runs. hvac is imported only when a client first talks to the server
(``pip install 'guardflow[vault]'``).

| name | what it is |
|---|---|
| :class:`VaultClient` | thread-safe client: KV v1/v2, leases, transit; token renewal and re-login |
| :class:`VaultConfig` | address, namespace, TLS, auth; ``VaultConfig.from_env()`` |
| :class:`TokenAuth`, :class:`AppRoleAuth`, :class:`KubernetesAuth`, :class:`JWTAuth`, :class:`UserpassAuth` | how to log in |
| :class:`SecretValue`, :class:`Secret` | a value, and a whole secret, that never print |
| :class:`SecretRef` | a parsed ``vault://MOUNT/PATH#KEY`` reference |
| :class:`SecretCache` | thread-safe single-flight cache honouring leases |
| :class:`Lease` | the lease of a dynamic secret |
| :class:`TransitKey` | batched, concurrent transit encryption (convergent keys for tokens) |

Examples:
    >>> from guardflow.secrets import VaultClient
    >>> with VaultClient.from_env() as vault:  # doctest: +SKIP
    ...     token = vault.get("vault://secret/inference#token")
    >>> print(token)  # doctest: +SKIP
    **********
"""  # noqa: E501

from __future__ import annotations

from guardflow.secrets.auth import (
    AppRoleAuth,
    AuthMethod,
    JWTAuth,
    KubernetesAuth,
    TokenAuth,
    UserpassAuth,
)
from guardflow.secrets.cache import SecretCache, default_cache
from guardflow.secrets.client import VaultClient
from guardflow.secrets.config import VaultConfig
from guardflow.secrets.leases import Lease
from guardflow.secrets.refs import SecretRef
from guardflow.secrets.transit import TransitKey
from guardflow.secrets.values import Secret, SecretValue

__all__ = [
    "AppRoleAuth",
    "AuthMethod",
    "JWTAuth",
    "KubernetesAuth",
    "Lease",
    "Secret",
    "SecretCache",
    "SecretRef",
    "SecretValue",
    "TokenAuth",
    "TransitKey",
    "UserpassAuth",
    "VaultClient",
    "VaultConfig",
    "default_cache",
]
