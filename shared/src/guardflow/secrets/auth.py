"""How a :class:`~guardflow.secrets.VaultClient` logs in: one pydantic model per auth method.

The models only hold settings (secrets as :class:`pydantic.SecretStr`); the login requests live in
:mod:`guardflow.secrets._login`. ``method`` is the discriminator, so a config file or a Prefect
block can say ``{"method": "approle", "role_id": ..., "secret_id": ...}``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "DEFAULT_K8S_JWT_PATH",
    "AppRoleAuth",
    "AuthMethod",
    "JWTAuth",
    "KubernetesAuth",
    "TokenAuth",
    "UserpassAuth",
]

DEFAULT_K8S_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class _Auth(BaseModel):
    model_config = _MODEL_CONFIG

    @property
    def mount_point(self) -> str | None:
        """The auth mount the login goes to (``None`` for tokens)."""
        return getattr(self, "mount", None)

    def identity(self) -> str:
        """A stable, non-secret name for who logs in (part of the cache key)."""
        raise NotImplementedError


class TokenAuth(_Auth):
    """Authenticate with a Vault token.

    Args:
        token: The token (``VAULT_TOKEN``).

    Examples:
        >>> TokenAuth(token="hvs.x")
        TokenAuth(method='token', token=SecretStr('**********'))
    """

    method: Literal["token"] = "token"
    token: SecretStr

    def identity(self) -> str:
        """The token's SHA-256 (first 16 hex digits): tells tokens apart without holding them."""
        digest = hashlib.sha256(self.token.get_secret_value().encode()).hexdigest()
        return f"token:{digest[:16]}"


class AppRoleAuth(_Auth):
    """Log in with an AppRole role id and secret id.

    Args:
        role_id: The role id (not secret by itself).
        secret_id: The secret id.
        mount: The AppRole auth mount point.
    """

    method: Literal["approle"] = "approle"
    role_id: str
    secret_id: SecretStr
    mount: str = "approle"

    def identity(self) -> str:
        """``approle:<mount>:<role_id>``."""
        return f"approle:{self.mount}:{self.role_id}"


class KubernetesAuth(_Auth):
    """Log in with the pod's service-account token (Kubernetes auth method).

    Args:
        role: The Vault role bound to the service account.
        jwt_path: Where the token is mounted; read again at every login, since projected tokens
            rotate.
        audience: The audience the Vault role expects. When set, the token's ``aud`` claim is
            checked before logging in, so a token projected for another audience fails with a
            message saying so instead of Vault's bare "permission denied". Mount a projected
            token with this audience and point ``jwt_path`` at it.
        mount: The Kubernetes auth mount point.
    """

    method: Literal["kubernetes"] = "kubernetes"
    role: str
    jwt_path: str = DEFAULT_K8S_JWT_PATH
    audience: str | None = None
    mount: str = "kubernetes"

    def identity(self) -> str:
        """``kubernetes:<mount>:<role>``."""
        return f"kubernetes:{self.mount}:{self.role}"


class JWTAuth(_Auth):
    """Log in with a signed JWT (JWT/OIDC auth method), given inline or read from a file.

    Args:
        role: The Vault role.
        jwt: The token itself.
        jwt_path: A file holding the token (read again at every login); one of ``jwt`` and
            ``jwt_path`` is required.
        mount: The JWT auth mount point.
    """

    method: Literal["jwt"] = "jwt"
    role: str
    jwt: SecretStr | None = None
    jwt_path: str | None = None
    mount: str = "jwt"

    @model_validator(mode="after")
    def _one_source(self) -> JWTAuth:
        if (self.jwt is None) == (self.jwt_path is None):
            raise ValueError("give exactly one of jwt and jwt_path")
        return self

    def identity(self) -> str:
        """``jwt:<mount>:<role>``."""
        return f"jwt:{self.mount}:{self.role}"


class UserpassAuth(_Auth):
    """Log in with a username and password (userpass auth method).

    Args:
        username: The user name.
        password: The password.
        mount: The userpass auth mount point.
    """

    method: Literal["userpass"] = "userpass"
    username: str
    password: SecretStr
    mount: str = "userpass"

    def identity(self) -> str:
        """``userpass:<mount>:<username>``."""
        return f"userpass:{self.mount}:{self.username}"


AuthMethod = Annotated[
    TokenAuth | AppRoleAuth | KubernetesAuth | JWTAuth | UserpassAuth,
    Field(discriminator="method"),
]
"""Any one of the auth models, told apart by ``method``."""
