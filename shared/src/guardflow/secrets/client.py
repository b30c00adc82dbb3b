"""The Vault client: KV reads and writes, leased secrets and transit, on one authenticated token.

Examples:
    >>> from guardflow.secrets import VaultClient
    >>> with VaultClient.from_env() as vault:  # doctest: +SKIP
    ...     password = vault.read_key("app/db", "password")   # a SecretValue
    ...     connect(user="app", password=password.reveal())
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from guardflow.errors import SecretKeyMissingError, SecretNotFoundError
from guardflow.secrets._connection import Connection
from guardflow.secrets._lease_ops import LeaseTracker
from guardflow.secrets.cache import CacheKey, SecretCache, default_cache
from guardflow.secrets.config import VaultConfig
from guardflow.secrets.kv import detect_kv_version, kv_read, kv_write
from guardflow.secrets.leases import Lease
from guardflow.secrets.refs import SecretRef
from guardflow.secrets.values import Secret, SecretValue

if TYPE_CHECKING:
    from typing_extensions import Self

    from guardflow.secrets.transit import TransitKey

__all__ = ["VaultClient"]


class VaultClient:
    """A thread-safe client for HashiCorp Vault and OpenBao, built on hvac.

    Logs in on first use, renews its token in the background, and logs in again once when Vault
    answers 403. KV reads go through a :class:`SecretCache` (the process-wide one by default),
    so many tasks reading one path cause one request.

    Args:
        config: Server address, TLS, namespace and auth.
        cache: The cache for KV reads; :func:`~guardflow.secrets.cache.default_cache` when ``None``.

    Examples:
        >>> config = VaultConfig(url="http://127.0.0.1:8200", auth=TokenAuth(token="..."))
        >>> with VaultClient(config) as vault:  # doctest: +SKIP
        ...     vault.write("app/db", {"password": "pw"})
        ...     vault.get("vault://secret/app/db#password")
        SecretValue('**********')
    """

    def __init__(self, config: VaultConfig, *, cache: SecretCache | None = None) -> None:
        self.config = config
        self.cache = cache if cache is not None else default_cache()
        self._conn = Connection(config)
        self._lock = threading.Lock()
        self._kv_versions: dict[str, Literal[1, 2]] = {}
        self._tracker = LeaseTracker(self._conn)
        self._closed = False

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, cache: SecretCache | None = None
    ) -> VaultClient:
        """Build a client from ``VAULT_ADDR``, ``VAULT_TOKEN`` (or AppRole) and friends.

        See :meth:`VaultConfig.from_env` for the variables read.

        Raises:
            ConfigurationError: A required variable is missing.
        """
        return cls(VaultConfig.from_env(environ), cache=cache)

    @property
    def hvac(self) -> Any:
        """This thread's authenticated :class:`hvac.Client`, for what guardflow does not wrap."""
        return self._conn.session()

    @property
    def requests_sent(self) -> int:
        """How many requests this client sent (logins and renewals included)."""
        return self._conn.requests

    @property
    def logins(self) -> int:
        """How many times this client logged in (0 with token auth)."""
        return self._conn.logins

    @property
    def token_renewals(self) -> int:
        """How many times the background thread renewed this client's token."""
        return self._conn.token_renewals

    # --- KV ------------------------------------------------------------------------------------

    def kv_version(self, mount: str | None = None) -> Literal[1, 2]:
        """The KV version of ``mount``: configured, else detected once and remembered."""
        mount = _clean_mount(mount or self.config.kv_mount)
        if self.config.kv_version is not None:
            return self.config.kv_version
        with self._lock:
            known = self._kv_versions.get(mount)
        if known is None:
            known = detect_kv_version(self._conn.request, mount)
            with self._lock:
                self._kv_versions[mount] = known
        return known

    def read(
        self,
        path: str,
        *,
        mount: str | None = None,
        kv_version: Literal[1, 2] | None = None,
        version: int | None = None,
        use_cache: bool = True,
    ) -> Secret:
        """Read a whole KV secret.

        Args:
            path: The path inside the mount (``app/db``, not ``secret/data/app/db``).
            mount: The KV mount point; ``config.kv_mount`` by default.
            kv_version: 1 or 2; detected (or ``config.kv_version``) by default.
            version: A KV v2 version; the latest by default.
            use_cache: ``False`` to always ask the server (the answer still refreshes the cache).

        Returns:
            The secret: a mapping of key names to :class:`SecretValue`.

        Raises:
            SecretNotFoundError: Nothing at the path (or that version is deleted).
            SecretEngineNotMountedError: Nothing is mounted at ``mount``.
            VaultPermissionError: The token's policy does not grant read on the path.
            VaultAuthError: Login failed or the token was rejected.
            VaultUnreachableError: The server could not be reached.
            VaultSealedError: The server is sealed.
        """
        mount = _clean_mount(mount or self.config.kv_mount)
        path = path.strip("/")
        key: CacheKey = (*self.config.cache_scope(), mount, path, version)

        def load() -> tuple[Secret, float | None]:
            kv = kv_version or self.kv_version(mount)
            try:
                secret = kv_read(
                    self._conn.request, mount=mount, path=path, kv_version=kv, version=version
                )
            except SecretNotFoundError as exc:
                if path.startswith(f"{mount}/"):
                    exc.message += (
                        f"; paths are given without the mount point: did you mean "
                        f"path={path[len(mount) + 1 :]!r}?"
                    )
                raise
            ttl = secret.lease.duration if secret.lease is not None else self.config.cache_ttl
            return secret, ttl

        if not use_cache:
            secret, ttl = load()
            self.cache.put(key, secret, ttl)
            return secret
        return self.cache.get_or_load(key, load)

    def read_key(
        self,
        path: str,
        key: str,
        *,
        mount: str | None = None,
        kv_version: Literal[1, 2] | None = None,
        version: int | None = None,
        use_cache: bool = True,
    ) -> SecretValue:
        """Read one key of a KV secret.

        Args:
            path: The path inside the mount.
            key: The key in the secret.
            mount: The KV mount point; ``config.kv_mount`` by default.
            kv_version: 1 or 2; detected by default.
            version: A KV v2 version; the latest by default.
            use_cache: ``False`` to always ask the server.

        Returns:
            The value, masked until revealed.

        Raises:
            SecretKeyMissingError: The secret has no such key (the message lists the keys it has).
            SecretsError: As :meth:`read`.
        """
        secret = self.read(
            path, mount=mount, kv_version=kv_version, version=version, use_cache=use_cache
        )
        try:
            return secret[key]
        except KeyError:
            available = sorted(secret)
            raise SecretKeyMissingError(
                f"secret {secret.path!r} in mount {secret.mount!r} has no key {key!r}; "
                f"its keys are {available}",
                path=secret.path,
                key=key,
                available=available,
            ) from None

    def get(self, ref: str | SecretRef) -> SecretValue | Secret:
        """Resolve a ``vault://`` reference.

        Args:
            ref: ``vault://MOUNT/PATH#KEY`` (see :class:`SecretRef`) or a parsed reference.

        Returns:
            A :class:`SecretValue` when the reference names a key, else the whole :class:`Secret`.

        Raises:
            ConfigurationError: ``ref`` is not a valid reference.
            SecretsError: As :meth:`read_key` / :meth:`read`.
        """
        parsed = ref if isinstance(ref, SecretRef) else SecretRef.parse(ref)
        if parsed.key is not None:
            return self.read_key(
                parsed.path,
                parsed.key,
                mount=parsed.mount,
                kv_version=parsed.kv_version,
                version=parsed.version,
            )
        return self.read(
            parsed.path, mount=parsed.mount, kv_version=parsed.kv_version, version=parsed.version
        )

    def write(
        self,
        path: str,
        data: Mapping[str, str | SecretValue],
        *,
        mount: str | None = None,
        kv_version: Literal[1, 2] | None = None,
    ) -> int | None:
        """Write (replace) a KV secret and drop it from the cache.

        Args:
            path: The path inside the mount.
            data: Key names and values (plain strings or :class:`SecretValue`).
            mount: The KV mount point; ``config.kv_mount`` by default.
            kv_version: 1 or 2; detected by default.

        Returns:
            The new version on KV v2, ``None`` on KV v1.

        Raises:
            VaultPermissionError: The policy does not grant create/update on the path.
            SecretsError: As :meth:`read`.
        """
        mount = _clean_mount(mount or self.config.kv_mount)
        path = path.strip("/")
        kv = kv_version or self.kv_version(mount)
        try:
            return kv_write(self._conn.request, mount=mount, path=path, data=data, kv_version=kv)
        finally:
            url, namespace, _identity = self.config.cache_scope()
            self.cache.invalidate(url=url, namespace=namespace, mount=mount, path=path)

    # --- leases --------------------------------------------------------------------------------

    def read_lease(
        self,
        path: str,
        *,
        data: Mapping[str, Any] | None = None,
        revoke_on_close: bool = False,
    ) -> Secret:
        """Read a dynamic secret at any engine path and keep its lease alive.

        The lease is renewed in the background once ``config.renew_fraction`` of it has passed,
        until it is revoked, the server stops extending it, or the client is closed. Dynamic
        secrets are not cached: each read creates new credentials.

        Args:
            path: The full API path, mount included (``database/creds/app``).
            data: Request parameters for engines that issue on a write (``pki/issue/web``
                takes ``{"common_name": ...}``); the request is a POST when given.
            revoke_on_close: Revoke the lease when the client is closed.

        Returns:
            The secret, with ``.lease`` set when the server leased it.

        Raises:
            SecretsError: As :meth:`read`.
        """
        return self._tracker.read(path, data=data, revoke_on_close=revoke_on_close)

    def renew(self, lease: Lease, *, increment: float | None = None) -> Lease:
        """Renew ``lease`` now; updates it in place and returns it.

        Args:
            lease: A lease from :meth:`read_lease`.
            increment: Seconds asked for; the server's default when ``None``.

        Raises:
            SecretsError: The lease is not renewable, expired or revoked, or the request failed.
        """
        return self._tracker.renew(lease, increment=increment)

    def revoke(self, lease: Lease) -> None:
        """Revoke ``lease`` now and stop renewing it.

        Raises:
            SecretsError: The request failed.
        """
        self._tracker.revoke(lease)

    def leases(self) -> list[Lease]:
        """The leases this client tracks (read and not revoked)."""
        return self._tracker.leases()

    # --- transit -------------------------------------------------------------------------------

    def transit(
        self, key_name: str, *, mount: str = "transit", convergent: bool = False
    ) -> TransitKey:
        """A handle on a transit key for batched encryption and decryption.

        Args:
            key_name: The transit key's name.
            mount: The transit mount point.
            convergent: A derived key with convergent encryption: the same value and context
                always give the same ciphertext (deterministic, reversible tokens).

        Returns:
            The key handle (call :meth:`TransitKey.ensure_key` to create the key).
        """
        from guardflow.secrets.transit import TransitKey

        return TransitKey(self, key_name, mount=mount, convergent=convergent)

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop renewals, revoke the leases marked ``revoke_on_close`` and close the sessions."""
        if self._closed:
            return
        self._closed = True
        self._conn.renewer.close()
        self._tracker.revoke_marked()
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VaultClient(url={self.config.url!r}, auth={self.config.auth.method!r})"


def _clean_mount(mount: str) -> str:
    return mount.strip("/")
