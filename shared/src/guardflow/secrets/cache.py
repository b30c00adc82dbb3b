"""A thread-safe, single-flight cache of secrets that honours each secret's lease or TTL.

A hundred tasks of one worker reading the same path cause one request: the first reader loads,
the others wait for its answer (or its error) instead of asking Vault too. Entries expire with
their lease (or the KV ``ttl``), else after ``default_ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["CacheKey", "CacheStats", "SecretCache", "default_cache"]

T = TypeVar("T")

CacheKey = tuple[str, str, str, str, str, int | None]
"""``(url, namespace, auth identity, mount, path, version)``."""

_FIELDS = ("url", "namespace", "identity", "mount", "path", "version")


@dataclass
class CacheStats:
    """Counters of a :class:`SecretCache`.

    Args:
        hits: Reads answered from the cache (including waits on another thread's load).
        misses: Reads that had to load.
        loads: Loads that returned a value.
        errors: Loads that raised.
    """

    hits: int = 0
    misses: int = 0
    loads: int = 0
    errors: int = 0


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SecretCache:
    """Secrets by key, each until its own expiry; safe to share between threads.

    Args:
        default_ttl: Seconds an entry lives when its loader gives no TTL.
        max_entries: Beyond this, expired entries and then the least recently used are dropped.

    Examples:
        >>> cache = SecretCache(default_ttl=60)
        >>> key = ("http://vault:8200", "", "token:ab", "secret", "app/db", None)
        >>> cache.get_or_load(key, lambda: ("value", None))
        'value'
        >>> cache.get_or_load(key, lambda: ("never loaded", None))
        'value'
    """

    def __init__(self, default_ttl: float = 300.0, max_entries: int = 4096) -> None:
        if default_ttl < 0 or max_entries < 1:
            raise ValueError("default_ttl must be >= 0 and max_entries >= 1")
        self.default_ttl = default_ttl
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}

    def get(self, key: Hashable) -> Any | None:
        """Return the live entry under ``key``, or ``None``."""
        with self._lock:
            return self._live(key)

    def put(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``default_ttl`` when ``None``)."""
        ttl = self.default_ttl if ttl is None else ttl
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, value)
            self._entries.move_to_end(key)
            self._shrink()

    def get_or_load(self, key: Hashable, load: Callable[[], tuple[T, float | None]]) -> T:
        """Return the entry under ``key``, loading it once however many threads ask at once.

        Args:
            key: The cache key.
            load: Returns ``(value, ttl)``; ``ttl`` ``None`` means ``default_ttl``, ``0`` means
                do not cache. Runs in the first caller's thread; the others wait for it.

        Returns:
            The cached or loaded value.

        Raises:
            Exception: Whatever ``load`` raised, in every thread that waited for it.
        """
        with self._lock:
            value = self._live(key)
            if value is not None:
                self.stats.hits += 1
                return value  # type: ignore[no-any-return]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self.stats.misses += 1
            else:
                self.stats.hits += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[no-any-return]
        try:
            value, ttl = load()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                self.stats.errors += 1
                self._flights.pop(key, None)
            flight.done.set()
            raise
        flight.value = value
        self.put(key, value, ttl)
        with self._lock:
            self.stats.loads += 1
            self._flights.pop(key, None)
        flight.done.set()
        return value

    def invalidate(
        self,
        *,
        url: str | None = None,
        namespace: str | None = None,
        identity: str | None = None,
        mount: str | None = None,
        path: str | None = None,
        version: int | None = None,
    ) -> int:
        """Drop the entries whose :data:`CacheKey` fields match every argument given.

        Args:
            url: Server address.
            namespace: Namespace (``""`` for none).
            identity: Auth identity.
            mount: Mount point.
            path: Secret path.
            version: KV v2 version.

        Returns:
            How many entries were dropped.
        """
        wanted = {
            i: v
            for i, v in enumerate((url, namespace, identity, mount, path, version))
            if v is not None
        }
        with self._lock:
            doomed = [
                k
                for k in self._entries
                if isinstance(k, tuple)
                and len(k) == len(_FIELDS)
                and all(k[i] == v for i, v in wanted.items())
            ]
            for k in doomed:
                del self._entries[k]
            return len(doomed)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"SecretCache(entries={len(self)}, default_ttl={self.default_ttl:g})"

    def _live(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _shrink(self) -> None:
        if len(self._entries) <= self.max_entries:
            return
        now = time.monotonic()
        for k in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[k]
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


_DEFAULT: SecretCache | None = None
_DEFAULT_LOCK = threading.Lock()


def default_cache() -> SecretCache:
    """The process-wide cache every :class:`~guardflow.secrets.VaultClient` uses by default."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SecretCache()
        return _DEFAULT
