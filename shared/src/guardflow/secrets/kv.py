"""KV secrets engine, versions 1 and 2: API paths, version detection and response parsing.

Paths are always given inside their mount: ``read("app/db", mount="secret")`` reads
``secret/data/app/db`` on KV v2 and ``secret/app/db`` on KV v1. The mount is never guessed from
the path, so a mount name cannot be doubled into it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from guardflow.errors import SecretNotFoundError, SecretsError
from guardflow.secrets._hvac import Operation
from guardflow.secrets.leases import Lease
from guardflow.secrets.values import Secret, SecretValue

__all__ = [
    "Request",
    "detect_kv_version",
    "kv_read",
    "kv_write",
    "read_operation",
    "write_operation",
]

Request = Callable[..., "dict[str, Any] | None"]
"""``request(method, api_path, op=Operation, json=None, params=None) -> body``, errors mapped."""


def read_operation(mount: str, path: str, kv_version: int, version: int | None) -> Operation:
    """The :class:`Operation` that reads ``path`` (at ``version``) from a KV mount."""
    api_path = f"{mount}/data/{path}" if kv_version == 2 else f"{mount}/{path}"
    return Operation(api_path=api_path, mount=mount, path=path, version=version)


def write_operation(mount: str, path: str, kv_version: int) -> Operation:
    """The :class:`Operation` that writes ``path`` to a KV mount."""
    api_path = f"{mount}/data/{path}" if kv_version == 2 else f"{mount}/{path}"
    return Operation(api_path=api_path, capability="create/update", mount=mount, path=path)


def detect_kv_version(request: Request, mount: str, *, default: Literal[1, 2] = 2) -> Literal[1, 2]:
    """Ask the server which KV version is mounted at ``mount``.

    Uses ``sys/internal/ui/mounts/<mount>`` (what the Vault CLI uses; any token with a capability
    under the mount may call it). When the token may not, ``default`` is assumed.

    Raises:
        VaultUnreachableError: The server could not be reached.
        VaultSealedError: The server is sealed.
    """
    op = Operation(api_path=f"sys/internal/ui/mounts/{mount}", mount=mount, kind="sys")
    try:
        body = request("GET", op.api_path, op=op)
    except SecretsError as exc:
        if exc.retryable:  # unreachable, sealed: the read would fail the same way
            raise
        return default
    data = (body or {}).get("data") or {}
    options = data.get("options") or {}
    if data.get("type") not in (None, "kv", "generic"):
        return default
    return 2 if str(options.get("version", "1")) == "2" else 1


def kv_read(
    request: Request, *, mount: str, path: str, kv_version: int, version: int | None = None
) -> Secret:
    """Read one KV secret.

    Args:
        request: Sends a request and maps errors.
        mount: The KV mount point.
        path: The path inside the mount.
        kv_version: 1 or 2.
        version: A KV v2 version (ignored, and refused, on KV v1).

    Returns:
        The secret with its version (v2) or TTL lease (v1 ``ttl`` key).

    Raises:
        SecretNotFoundError: Nothing at the path, or the version is deleted/destroyed.
        SecretsError: Any other failure (see :mod:`guardflow.errors`).
    """
    if version is not None and kv_version != 2:
        raise SecretsError(
            f"mount {mount!r} is KV version 1, which keeps no versions; drop version={version}"
        )
    op = read_operation(mount, path, kv_version, version)
    params = {"version": version} if version is not None else None
    body = request("GET", op.api_path, op=op, params=params) or {}
    if kv_version == 2:
        outer = body.get("data") or {}
        data = outer.get("data")
        metadata = outer.get("metadata") or {}
        found_version = metadata.get("version")
    else:
        data = body.get("data")
        found_version = None
    if not isinstance(data, Mapping):
        raise SecretNotFoundError(
            f"no data at {path!r} in mount {mount!r}"
            + (f" (version {version} is deleted or destroyed)" if version is not None else ""),
            path=path,
            mount=mount,
        )
    lease = None
    duration = float(body.get("lease_duration") or 0)
    if duration > 0:
        lease = Lease(
            lease_id=str(body.get("lease_id") or ""),
            duration=duration,
            renewable=bool(body.get("renewable")),
        )
    return Secret(
        dict(data),
        path=path,
        mount=mount,
        version=int(found_version) if found_version is not None else None,
        lease=lease,
    )


def kv_write(
    request: Request,
    *,
    mount: str,
    path: str,
    data: Mapping[str, str | SecretValue],
    kv_version: int,
) -> int | None:
    """Write (replace) one KV secret; return the new version on KV v2, ``None`` on v1."""
    plain = {str(k): v.reveal() if isinstance(v, SecretValue) else v for k, v in data.items()}
    op = write_operation(mount, path, kv_version)
    payload: dict[str, Any] = {"data": plain} if kv_version == 2 else plain
    body = request("POST", op.api_path, op=op, json=payload) or {}
    if kv_version != 2:
        return None
    version = (body.get("data") or {}).get("version")
    return int(version) if version is not None else None
