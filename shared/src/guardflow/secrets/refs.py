"""``vault://`` references: where a secret lives, written as one string.

A reference can stand in for a literal credential anywhere guardflow takes one (an operator's
``token=``, a connection password, a Prefect task argument) and is resolved when the step runs.

Forms:

- ``vault://MOUNT/PATH#KEY``: the first segment is the mount point (``vault://secret/app/db#password``).
- ``vault:///PATH#KEY?mount=team/kv``: empty first segment, mount given as a parameter (for mounts
  that contain ``/``) or left to the client's default ``kv_mount``.
- Optional parameters ``version=N`` (KV v2 version) and ``kv=1|2`` (skip detection). They may be
  written before the fragment (``?version=3#key``) or after it (``#key?version=3``).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ConfigDict, field_validator

from guardflow.errors import ConfigurationError

__all__ = ["SCHEME", "SecretRef"]

SCHEME = "vault://"


class SecretRef(BaseModel):
    """A parsed ``vault://`` reference to a KV secret or one key of it.

    Args:
        mount: The KV mount point; ``None`` uses the client's ``kv_mount``.
        path: The secret path inside the mount (no leading or trailing ``/``).
        key: One key of the secret; ``None`` means the whole secret.
        version: A KV v2 version; ``None`` reads the latest.
        kv_version: ``1`` or ``2`` to skip KV version detection.

    Examples:
        >>> ref = SecretRef.parse("vault://secret/app/db#password")
        >>> ref.mount, ref.path, ref.key
        ('secret', 'app/db', 'password')
        >>> str(SecretRef.parse("vault:///app/db#password?mount=team/kv&version=2"))
        'vault:///app/db?mount=team%2Fkv&version=2#password'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mount: str | None = None
    path: str
    key: str | None = None
    version: int | None = None
    kv_version: Literal[1, 2] | None = None

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, value: str) -> str:
        value = value.strip("/")
        if not value:
            raise ValueError("a secret path is required")
        return value

    @field_validator("mount")
    @classmethod
    def _strip_mount(cls, value: str | None) -> str | None:
        return value.strip("/") or None if value is not None else None

    @staticmethod
    def is_ref(text: object) -> bool:
        """Return whether ``text`` is a string starting with ``vault://``."""
        return isinstance(text, str) and text.startswith(SCHEME)

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Parse a ``vault://`` reference.

        Args:
            text: The reference, e.g. ``"vault://secret/app/db#password"``.

        Returns:
            The parsed reference.

        Raises:
            ConfigurationError: ``text`` is not a valid reference (the message shows the
                reference, which names a location, never a secret).
        """
        if not cls.is_ref(text):
            raise ConfigurationError(
                f"{text!r} is not a Vault reference; write vault://MOUNT/PATH#KEY"
            )
        rest = text[len(SCHEME) :]
        location, _, fragment = rest.partition("#")
        location, _, query = location.partition("?")
        key, _, fragment_query = fragment.partition("?")
        params = dict(parse_qsl("&".join(q for q in (query, fragment_query) if q)))
        unknown = sorted(set(params) - {"mount", "version", "kv"})
        if unknown:
            raise ConfigurationError(
                f"unknown parameter(s) {unknown} in Vault reference {text!r}; "
                "allowed: mount, version, kv"
            )
        mount: str | None
        if location.startswith("/"):
            mount, path = params.get("mount"), location[1:]
        else:
            mount, _, path = location.partition("/")
            if "mount" in params:
                raise ConfigurationError(
                    f"Vault reference {text!r} names the mount twice; use vault:///PATH?mount=..."
                )
        try:
            return cls(
                mount=mount,
                path=path,
                key=key or None,
                version=int(params["version"]) if "version" in params else None,
                kv_version=int(params["kv"]) if "kv" in params else None,
            )
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise ConfigurationError(
                f"invalid Vault reference {text!r}: expected vault://MOUNT/PATH#KEY with optional "
                "?version=N (an integer) and ?kv=1|2"
            ) from exc

    def __str__(self) -> str:
        params: dict[str, str] = {}
        if self.mount is not None and "/" in self.mount:
            params["mount"] = self.mount
            location = f"/{self.path}"
        elif self.mount is None:
            location = f"/{self.path}"
        else:
            location = f"{self.mount}/{self.path}"
        if self.version is not None:
            params["version"] = str(self.version)
        if self.kv_version is not None:
            params["kv"] = str(self.kv_version)
        query = f"?{urlencode(params)}" if params else ""
        fragment = f"#{self.key}" if self.key is not None else ""
        return f"{SCHEME}{location}{query}{fragment}"
