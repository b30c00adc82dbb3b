"""The :class:`VaultCredentials` block, and reading a secret with it (shared by every Vault task).

Public through :mod:`prefect_guardflow.vault`; kept apart so each module stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from prefect.blocks.abstract import CredentialsBlock
from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator

from guardflow.errors import ConfigurationError
from prefect_guardflow._links import DOCUMENTATION_URL, LOGO_URL
from prefect_guardflow._redaction import install_log_masking, register_secret

if TYPE_CHECKING:
    from guardflow.secrets import Secret, SecretRef, SecretValue, VaultClient, VaultConfig

__all__ = ["AuthMethodName", "VaultCredentials", "location", "read_ref"]

AuthMethodName = Literal["token", "approle", "userpass", "kubernetes", "jwt"]

# Fields each auth method needs, checked here so the message can name the block's fields.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "token": ("token",),
    "approle": ("role_id", "secret_id"),
    "userpass": ("username", "password"),
    "kubernetes": ("role",),
    "jwt": ("role",),
}


class VaultCredentials(CredentialsBlock):
    """Where a HashiCorp Vault or OpenBao server is and how to log in to it.

    Supports token, AppRole, userpass, Kubernetes and JWT/OIDC login, namespaces and TLS
    verification with a CA bundle. The token, AppRole secret id, password and JWT are stored
    encrypted by Prefect and never appear in logs, results or artifacts.

    Examples:
        Load saved credentials and read a secret:
        ```python
        from prefect_guardflow.vault import VaultCredentials

        credentials = VaultCredentials.load("BLOCK_NAME")
        with credentials.get_client() as client:
            password = client.read_key("app/db", "password")
        ```
    """

    # Validation errors must not echo a token or password back.
    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "Guardflow Vault Credentials"
    _block_type_slug = "guardflow-vault-credentials"
    _logo_url = LOGO_URL  # type: ignore[assignment]
    _documentation_url = DOCUMENTATION_URL  # type: ignore[assignment]

    url: str = Field(
        default=...,
        description="Address of the Vault or OpenBao server, for example https://vault:8200.",
        examples=["https://vault.example.com:8200"],
    )
    namespace: str | None = Field(
        default=None, description="Namespace every request goes to (Vault Enterprise, OpenBao)."
    )
    auth_method: AuthMethodName = Field(
        default="token",
        description="How to log in: token, approle, userpass, kubernetes or jwt.",
    )
    token: SecretStr | None = Field(default=None, description="Vault token (token method).")
    role_id: str | None = Field(default=None, description="AppRole role id (approle method).")
    secret_id: SecretStr | None = Field(
        default=None, description="AppRole secret id (approle method)."
    )
    username: str | None = Field(default=None, description="User name (userpass method).")
    password: SecretStr | None = Field(default=None, description="Password (userpass method).")
    role: str | None = Field(
        default=None, description="Vault role to log in as (kubernetes and jwt methods)."
    )
    jwt: SecretStr | None = Field(
        default=None, description="Signed JWT to log in with (jwt method), instead of jwt_path."
    )
    jwt_path: str | None = Field(
        default=None,
        description=(
            "File holding the JWT (jwt method) or service-account token (kubernetes method; "
            "default: the pod's service-account token)."
        ),
    )
    audience: str | None = Field(
        default=None,
        description="Audience the Kubernetes role expects; the token's aud claim is checked.",
    )
    auth_mount: str | None = Field(
        default=None,
        description="Mount point of the auth method, when not its default (approle, jwt...).",
    )
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate.")
    ca_bundle: str | None = Field(
        default=None, description="Path of a CA bundle to verify the server's certificate with."
    )
    timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for each request.")
    kv_mount: str = Field(
        default="secret", description="KV mount used when a read or write names none."
    )
    kv_version: Literal[1, 2] | None = Field(
        default=None,
        description="KV engine version (1 or 2); empty detects it per mount.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.strip().startswith(("http://", "https://")):
            raise ValueError("the Vault address must start with http:// or https://")
        return value

    def to_config(self) -> VaultConfig:
        """Return the core :class:`~guardflow.secrets.VaultConfig` of this block.

        Returns:
            The configuration, secrets still wrapped.

        Raises:
            ConfigurationError: A field the auth method needs is empty, or a field does not
                validate; the message names fields, never their values.
        """
        from guardflow.secrets import VaultConfig

        missing = [name for name in _REQUIRED[self.auth_method] if getattr(self, name) is None]
        if self.auth_method == "jwt" and self.jwt is None and self.jwt_path is None:
            missing.append("jwt or jwt_path")
        if missing:
            raise ConfigurationError(
                f"VaultCredentials block: auth_method {self.auth_method!r} needs "
                f"{', '.join(missing)}; fill in the field(s) or choose another auth_method"
            )
        verify: bool | str = self.verify_tls
        if self.verify_tls and self.ca_bundle:
            verify = self.ca_bundle
        try:
            return VaultConfig.model_validate(
                {
                    "url": self.url,
                    "namespace": self.namespace,
                    "verify": verify,
                    "timeout": self.timeout,
                    "auth": self._auth_settings(),
                    "kv_mount": self.kv_mount,
                    "kv_version": self.kv_version,
                }
            )
        except ValidationError as exc:
            raise ConfigurationError.from_validation(exc, what="VaultCredentials block") from None

    def _auth_settings(self) -> dict[str, Any]:
        method = self.auth_method
        fields: dict[str, Any] = {"method": method}
        if method == "token":
            fields["token"] = self.token
        elif method == "approle":
            fields.update(role_id=self.role_id, secret_id=self.secret_id)
        elif method == "userpass":
            fields.update(username=self.username, password=self.password)
        elif method == "kubernetes":
            fields.update(role=self.role, audience=self.audience)
            if self.jwt_path:
                fields["jwt_path"] = self.jwt_path
        else:
            fields.update(role=self.role, jwt=self.jwt, jwt_path=self.jwt_path)
        if self.auth_mount and method != "token":
            fields["mount"] = self.auth_mount
        return fields

    @classmethod
    def from_config(cls, config: VaultConfig) -> VaultCredentials:
        """Build a block from a core :class:`~guardflow.secrets.VaultConfig`.

        Args:
            config: The configuration.

        Returns:
            An unsaved block with the same server, auth and KV settings.
        """
        auth = config.auth.model_dump()
        method = auth.pop("method")
        mount = auth.pop("mount", None)
        default_mount = type(config.auth).model_fields["mount"].default if mount else None
        return cls(
            url=config.url,
            namespace=config.namespace,
            auth_method=method,
            auth_mount=mount if mount != default_mount else None,
            verify_tls=config.verify is not False,
            ca_bundle=config.verify if isinstance(config.verify, str) else None,
            timeout=config.timeout,
            kv_mount=config.kv_mount,
            kv_version=config.kv_version,
            **auth,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VaultCredentials:
        """Build a block from the standard ``VAULT_*`` variables.

        Reads ``VAULT_ADDR``, then ``VAULT_TOKEN`` or ``VAULT_ROLE_ID`` with
        ``VAULT_SECRET_ID``, and ``VAULT_NAMESPACE``, ``VAULT_CACERT``, ``VAULT_SKIP_VERIFY``
        (as the ``vault`` CLI does).

        Args:
            environ: The variables to read; ``os.environ`` by default.

        Returns:
            An unsaved block.

        Raises:
            ConfigurationError: A required variable is missing (named, never its value).

        Examples:
            ```python
            credentials = VaultCredentials.from_env()
            ```
        """
        from guardflow.secrets import VaultConfig

        return cls.from_config(VaultConfig.from_env(environ))

    def get_client(self) -> VaultClient:
        """Return a guardflow :class:`~guardflow.secrets.VaultClient` logged in with this block.

        The block's own secrets (token, secret id, password, JWT) are registered with the log
        mask first. Close the client when done (it is a context manager): that stops its token
        renewal.

        Returns:
            The client; it logs in on first use.

        Raises:
            ConfigurationError: The block is incomplete or invalid.

        Examples:
            ```python
            with VaultCredentials.load("BLOCK_NAME").get_client() as client:
                secret = client.read("app/db")
            ```
        """
        from guardflow.secrets import VaultClient

        register_secret([self.token, self.secret_id, self.password, self.jwt])
        return VaultClient(self.to_config())


def location(
    path: str,
    key: str | None,
    *,
    mount: str | None,
    version: int | None,
    kv_version: Literal[1, 2] | None,
) -> SecretRef:
    """Describe where a secret is, from a ``vault://`` reference or from separate arguments.

    Args:
        path: A path inside the mount, or a whole ``vault://`` reference.
        key: One key of the secret, or ``None`` for all of it.
        mount: The KV mount, or ``None`` for the client's default.
        version: A KV v2 version, or ``None`` for the latest.
        kv_version: ``1`` or ``2``, or ``None`` to detect it.

    Returns:
        The parsed :class:`~guardflow.secrets.SecretRef`.

    Raises:
        ConfigurationError: A reference was combined with separate arguments, or the location
            is invalid.
    """
    from guardflow.secrets import SecretRef

    if SecretRef.is_ref(path):
        if any(v is not None for v in (key, mount, version, kv_version)):
            raise ConfigurationError(
                f"{path!r} is a vault:// reference, which names its own mount, key and version; "
                "pass either the reference alone or a plain path with key=, mount=, version="
            )
        return SecretRef.parse(path)
    try:
        return SecretRef(mount=mount, path=path, key=key, version=version, kv_version=kv_version)
    except ValidationError as exc:
        raise ConfigurationError.from_validation(exc, what="Vault secret location") from None


def read_ref(credentials: VaultCredentials, ref: SecretRef) -> SecretValue | Secret:
    """Read ``ref`` with a fresh client and register what was read with the log mask.

    Args:
        credentials: The server and login.
        ref: What to read.

    Returns:
        A :class:`~guardflow.secrets.SecretValue` for a reference with a key, else a
        :class:`~guardflow.secrets.Secret`.

    Raises:
        SecretsError: Any failure of the read (its subclasses say which).
    """
    install_log_masking()
    with credentials.get_client() as client:
        value = client.get(ref)
    register_secret(value)
    return value
