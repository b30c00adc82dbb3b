"""The one place that touches hvac's sessions and exceptions.

:func:`new_session` builds an :class:`hvac.Client` from a :class:`VaultConfig`; :func:`translate`
turns whatever hvac or requests raised into the guardflow error a user can act on. Messages name
the server URL, mounts, paths and key names; never a token or a value. Text Vault sent back is
quoted only for login and transit failures, cut short, and only as Vault's own error strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardflow._optional import require
from guardflow.errors import (
    SecretEngineNotMountedError,
    SecretNotFoundError,
    SecretsError,
    TransitError,
    VaultAuthError,
    VaultPermissionError,
    VaultSealedError,
    VaultUnreachableError,
)

if TYPE_CHECKING:
    from guardflow.secrets.config import VaultConfig

__all__ = ["Operation", "api_request", "is_forbidden", "new_session", "server_errors", "translate"]


@dataclass(frozen=True)
class Operation:
    """What a request was for, so its failure can be described.

    Args:
        api_path: The API path after ``/v1/`` (``secret/data/app/db``).
        capability: The policy capability it needs (``read``, ``create``, ``update``...).
        mount: The mount point of the engine or auth method.
        path: The secret path inside the mount.
        kind: ``kv``, ``lease``, ``login``, ``token``, ``transit`` or ``sys``.
        version: The KV v2 version asked for.
        auth_method: For logins, the auth method.
    """

    api_path: str
    capability: str = "read"
    mount: str | None = None
    path: str | None = None
    kind: str = "kv"
    version: int | None = None
    auth_method: str | None = None


def new_session(config: VaultConfig, token: str | None = None) -> Any:
    """Return a new :class:`hvac.Client` for ``config`` (one per thread: sessions are not shared).

    Args:
        config: Address, namespace, TLS and timeout settings.
        token: The token to send, if already known.

    Raises:
        MissingExtraError: hvac is not installed (``pip install 'guardflow[vault]'``).
    """
    hvac = require("hvac", "vault")
    return hvac.Client(
        url=config.url,
        token=token,
        verify=config.verify,
        timeout=config.timeout,
        namespace=config.namespace,
    )


def api_request(
    session: Any, method: str, api_path: str, *, json: Any = None, params: Any = None
) -> dict[str, Any] | None:
    """Send one request through ``session``'s adapter; return the JSON body (``None`` for 204).

    hvac raises its own exceptions on error statuses; callers pass them to :func:`translate`.
    """
    kwargs: dict[str, Any] = {}
    if json is not None:
        kwargs["json"] = json
    if params is not None:
        kwargs["params"] = params
    response = session.adapter.request(method, f"/v1/{api_path}", **kwargs)
    if isinstance(response, dict):
        return response
    return None


def server_errors(exc: BaseException) -> str:
    """Vault's own error strings from an hvac exception, joined and cut to 200 characters."""
    errors = getattr(exc, "errors", None) or []
    text = "; ".join(" ".join(str(e).split()) for e in errors if e)
    return text[:200]


def is_forbidden(exc: BaseException) -> bool:
    """Whether ``exc`` is hvac's HTTP 403."""
    hvac_exceptions = require("hvac.exceptions", "vault")
    return isinstance(exc, hvac_exceptions.Forbidden)


def translate(exc: BaseException, *, url: str, op: Operation) -> SecretsError | None:
    """Map an hvac/requests exception to a guardflow error; ``None`` when it is not one of theirs.

    A 403 becomes :class:`VaultPermissionError` here: telling a revoked token from a policy that
    denies the path needs another request, which :class:`~guardflow.secrets.VaultClient` makes.

    Args:
        exc: What hvac or requests raised.
        url: The server address (for the message).
        op: What the request was for.
    """
    hvac_exceptions = require("hvac.exceptions", "vault")
    requests_exceptions = require("requests.exceptions", "vault")
    if isinstance(exc, requests_exceptions.SSLError):
        return VaultUnreachableError(
            f"TLS verification failed talking to Vault at {url}; pass the server's CA bundle as "
            "verify='/path/to/ca.pem' (VAULT_CACERT), or check the address uses the right "
            "host name",
            url=url,
        )
    if isinstance(exc, requests_exceptions.RequestException):
        return VaultUnreachableError(
            f"cannot reach Vault at {url} ({type(exc).__name__}); check VAULT_ADDR and that the "
            "server is running and reachable from here",
            url=url,
        )
    if not isinstance(exc, hvac_exceptions.VaultError):
        return None
    detail = server_errors(exc)
    if isinstance(exc, (hvac_exceptions.VaultDown, hvac_exceptions.VaultNotInitialized)):
        return VaultSealedError(
            f"Vault at {url} is sealed (or not initialized) and serves no secrets; unseal it with "
            "`bao operator unseal` / `vault operator unseal`, then retry",
            url=url,
        )
    if op.kind == "login":
        mount = op.mount or ""
        return VaultAuthError(
            f"{op.auth_method} login at auth/{mount} failed ({detail or type(exc).__name__}); "
            f"check the credentials and role, and that the {op.auth_method} auth method is "
            f"enabled at auth/{mount}",
            method=op.auth_method or "unknown",
            mount=op.mount,
        )
    if isinstance(exc, hvac_exceptions.Forbidden):
        return VaultPermissionError(
            f"permission denied on {op.api_path}; check the token's policy grants "
            f"{op.capability!r} on {op.api_path!r}"
            + (f" and that an engine is mounted at {op.mount}/" if op.mount else ""),
            path=op.api_path,
        )
    if isinstance(exc, hvac_exceptions.InvalidPath):
        mount = op.mount or op.api_path.split("/", 1)[0]
        if "no handler for route" in detail:
            return SecretEngineNotMountedError(
                f"no secrets engine is mounted at {mount}/ on {url}; check the mount point "
                "(`bao secrets list`) or enable the engine there",
                mount=mount,
            )
        if op.kind == "transit":
            return TransitError(
                f"transit key not found at {op.api_path}; create it (TransitKey.ensure_key())",
                key=op.path or "",
                mount=mount,
            )
        version = f" (version {op.version})" if op.version is not None else ""
        path = op.path if op.path is not None else op.api_path
        return SecretNotFoundError(
            f"no secret at {path!r}{version} in mount {mount!r}; check the path (given without "
            "the mount point) and the mount"
            + (", and that this version was not deleted or destroyed" if version else ""),
            path=path,
            mount=mount,
        )
    if op.kind == "transit":
        return TransitError(
            f"transit request to {op.api_path} failed ({detail or type(exc).__name__})",
            key=op.path or "",
            mount=op.mount or "transit",
        )
    status = type(exc).__name__
    return SecretsError(
        f"Vault refused {op.capability} on {op.api_path} ({status}: {detail or 'no detail'})",
        retryable=isinstance(
            exc,
            (
                hvac_exceptions.InternalServerError,
                hvac_exceptions.BadGateway,
                hvac_exceptions.RateLimitExceeded,
            ),
        ),
    )
