"""Secret values that never print: :class:`SecretValue` and :class:`Secret`.

A value read from Vault is wrapped at once, so a stray ``print``, log line, f-string, repr in a
traceback, JSON dump or pickle (Airflow XCom, Prefect results) cannot reveal it. The only way out
is an explicit :meth:`SecretValue.reveal`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from guardflow.errors import GuardflowError

if TYPE_CHECKING:
    from guardflow.secrets.leases import Lease

__all__ = ["MASK", "Secret", "SecretValue"]

MASK = "**********"
_NOT_PERSISTED = (
    "secret values must not be persisted (pickled) as task results, XCom or cache entries; "
    "return a reference (vault://...) or a non-secret result and read the secret where it is used"
)


class SecretValue:
    """A secret string that shows as ``'**********'`` until :meth:`reveal` is called.

    ``str()``, ``repr()``, ``format()`` and f-strings all give the mask; equality compares the
    revealed values in constant time; the value is hashable (so it can be a set member or dict
    key) and refuses to be pickled.

    Args:
        value: The secret itself.

    Examples:
        >>> token = SecretValue("s3cr3t")
        >>> print(token, repr(token), f"{token}")
        ********** SecretValue('**********') **********
        >>> token.reveal()
        's3cr3t'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, SecretValue):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"SecretValue holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """Return the secret in clear; pass it straight to where it is used, never to a log."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"SecretValue('{MASK}')"

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((SecretValue, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> NoReturn:
        raise GuardflowError(_NOT_PERSISTED)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise GuardflowError(_NOT_PERSISTED)

    def __copy__(self) -> SecretValue:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretValue:
        return self


class Secret(Mapping[str, SecretValue]):
    """One secret read from Vault: a read-only mapping of key names to :class:`SecretValue`.

    Args:
        data: The key/value pairs (plain strings are wrapped).
        path: The secret's path inside its mount.
        mount: The mount point of the engine it came from.
        version: The KV v2 version read, ``None`` for KV v1 and other engines.
        lease: The lease of a dynamic secret (or a KV TTL), ``None`` when it has none.

    Examples:
        >>> secret = Secret({"user": "app", "password": "pw"}, path="db", mount="secret")
        >>> secret
        Secret(path='db', mount='secret', version=None, keys=['password', 'user'])
        >>> secret["password"]
        SecretValue('**********')
        >>> secret.reveal()["user"]
        'app'
    """

    __slots__ = ("_data", "lease", "mount", "path", "version")

    def __init__(
        self,
        data: Mapping[str, str | SecretValue],
        *,
        path: str,
        mount: str | None = None,
        version: int | None = None,
        lease: Lease | None = None,
    ) -> None:
        self._data: dict[str, SecretValue] = {
            str(k): v if isinstance(v, SecretValue) else SecretValue(_as_text(v))
            for k, v in data.items()
        }
        self.path = path
        self.mount = mount
        self.version = version
        self.lease = lease

    def __getitem__(self, key: str) -> SecretValue:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def reveal(self) -> dict[str, str]:
        """Return every key with its value in clear."""
        return {k: v.reveal() for k, v in self._data.items()}

    def __repr__(self) -> str:
        return (
            f"Secret(path={self.path!r}, mount={self.mount!r}, version={self.version!r}, "
            f"keys={sorted(self._data)!r})"
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self.path, self.mount, self.version, self._data) == (
            other.path,
            other.mount,
            other.version,
            other._data,
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise GuardflowError(_NOT_PERSISTED)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise GuardflowError(_NOT_PERSISTED)


def _as_text(value: object) -> str:
    """KV values are usually strings; numbers and booleans keep their JSON spelling."""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value)
