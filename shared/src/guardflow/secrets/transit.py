"""Transit encryption in bulk: batches the server accepts, sent concurrently, duplicates once.

OpenBao refuses a batch of about 250 items or more ("exceeded maximum number of strings"), so
batches are cut at 200. With a convergent key (``derived=True, convergent_encryption=True``) the
same value and context always give the same ciphertext: a deterministic, reversible token that
still joins across tables, which the PII tokenizer builds on.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from guardflow.errors import SecretsError, TransitError
from guardflow.secrets._hvac import Operation

if TYPE_CHECKING:
    from guardflow.secrets.client import VaultClient

__all__ = ["DEFAULT_CONTEXT", "MAX_BATCH", "TransitKey"]

MAX_BATCH = 200
DEFAULT_CONTEXT = "guardflow"


def _b64(value: str | bytes) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


class TransitKey:
    """One transit key, used through a :class:`~guardflow.secrets.VaultClient`.

    Args:
        client: The authenticated client.
        name: The key name.
        mount: The transit mount point.
        convergent: Whether the key is (or is to be created as) a derived, convergent key.

    Examples:
        >>> key = vault.transit("pii", convergent=True)  # doctest: +SKIP
        >>> key.ensure_key()  # doctest: +SKIP
        >>> tokens = key.encrypt_many(["alice@example.com", "bob@example.com"])  # doctest: +SKIP
        >>> key.decrypt_many(tokens)  # doctest: +SKIP
        ['alice@example.com', 'bob@example.com']
    """

    def __init__(
        self, client: VaultClient, name: str, *, mount: str = "transit", convergent: bool = False
    ) -> None:
        self.client = client
        self.name = name
        self.mount = mount.strip("/")
        self.convergent = convergent

    def __repr__(self) -> str:
        return f"TransitKey({self.name!r}, mount={self.mount!r}, convergent={self.convergent})"

    def _op(self, api_path: str, capability: str = "update") -> Operation:
        return Operation(
            api_path=api_path,
            capability=capability,
            mount=self.mount,
            path=self.name,
            kind="transit",
        )

    def _request(self, method: str, api_path: str, **kwargs: Any) -> dict[str, Any] | None:
        capability = "read" if method == "GET" else "update"
        return self.client._conn.request(
            method, api_path, op=self._op(api_path, capability), **kwargs
        )

    def ensure_key(self) -> None:
        """Create the key if it does not exist (convergent keys as derived + convergent).

        Raises:
            TransitError: The key exists but is not convergent while ``convergent`` was asked for.
            SecretsError: The request failed (not mounted, permission denied...).
        """
        path = f"{self.mount}/keys/{self.name}"
        try:
            body = self._request("GET", path) or {}
        except TransitError:  # 404: no such key yet
            body = {}
        data = body.get("data") or {}
        if data:
            if self.convergent and not data.get("convergent_encryption"):
                raise TransitError(
                    f"transit key {self.name!r} exists but is not convergent; use another key "
                    "name, or convergent=False",
                    key=self.name,
                    mount=self.mount,
                )
            return
        payload: dict[str, Any] = {"type": "aes256-gcm96"}
        if self.convergent:
            payload.update(derived=True, convergent_encryption=True)
        self._request("POST", path, json=payload)

    def _context(self, context: str | bytes | None) -> str | None:
        if context is None and self.convergent:
            context = DEFAULT_CONTEXT
        return None if context is None else _b64(context)

    def encrypt_many(
        self,
        values: Sequence[str | bytes],
        *,
        context: str | bytes | None = None,
        batch_size: int = MAX_BATCH,
        concurrency: int = 4,
    ) -> list[str]:
        """Encrypt ``values``; return their ciphertexts in the same order.

        Args:
            values: Plaintexts (str are encoded as UTF-8).
            context: The derivation context (convergent keys default to ``"guardflow"``); the
                same value and context give the same ciphertext on a convergent key.
            batch_size: Items per request, at most :data:`MAX_BATCH`.
            concurrency: Requests in flight at once.

        Returns:
            One ``vault:v<N>:...`` ciphertext per value.

        Raises:
            TransitError: The server refused an item or a batch (values are never quoted).
        """
        ctx = self._context(context)

        def item(value: str | bytes) -> dict[str, str]:
            entry = {"plaintext": _b64(value)}
            if ctx is not None:
                entry["context"] = ctx
            return entry

        return self._run("encrypt", "ciphertext", values, item, batch_size, concurrency)

    def decrypt_many(
        self,
        tokens: Sequence[str],
        *,
        context: str | bytes | None = None,
        batch_size: int = MAX_BATCH,
        concurrency: int = 4,
    ) -> list[str]:
        """Decrypt ``tokens`` (from :meth:`encrypt_many`); return plaintexts in the same order.

        Args:
            tokens: Ciphertexts.
            context: The context they were encrypted with.
            batch_size: Items per request, at most :data:`MAX_BATCH`.
            concurrency: Requests in flight at once.

        Returns:
            The plaintexts, decoded as UTF-8.

        Raises:
            TransitError: A token is malformed, from another key, or the context is wrong.
        """
        ctx = self._context(context)

        def item(token: str) -> dict[str, str]:
            entry = {"ciphertext": token}
            if ctx is not None:
                entry["context"] = ctx
            return entry

        plaintexts = self._run("decrypt", "plaintext", tokens, item, batch_size, concurrency)
        return [base64.b64decode(p).decode("utf-8") for p in plaintexts]

    def encrypt(self, value: str | bytes, *, context: str | bytes | None = None) -> str:
        """Encrypt one value (see :meth:`encrypt_many`)."""
        return self.encrypt_many([value], context=context)[0]

    def decrypt(self, token: str, *, context: str | bytes | None = None) -> str:
        """Decrypt one token (see :meth:`decrypt_many`)."""
        return self.decrypt_many([token], context=context)[0]

    def _run(
        self,
        action: str,
        field: str,
        inputs: Sequence[Any],
        item: Any,
        batch_size: int,
        concurrency: int,
    ) -> list[str]:
        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        batch_size = min(batch_size, MAX_BATCH)
        unique: dict[Any, int] = {}
        for value in inputs:
            unique.setdefault(value, len(unique))
        distinct = list(unique)
        chunks = [distinct[i : i + batch_size] for i in range(0, len(distinct), batch_size)]
        path = f"{self.mount}/{action}/{self.name}"

        def send(chunk: list[Any]) -> list[str]:
            try:
                body = self._request("POST", path, json={"batch_input": [item(v) for v in chunk]})
            except TransitError as exc:
                raise TransitError(
                    f"transit {action} with key {self.name!r} failed for a batch of "
                    f"{len(chunk)}: {exc}",
                    key=self.name,
                    mount=self.mount,
                ) from None
            except SecretsError:
                raise
            results = ((body or {}).get("data") or {}).get("batch_results") or []
            failed = [r for r in results if r.get("error") or field not in r]
            if len(results) != len(chunk) or failed:
                raise TransitError(
                    f"transit {action} with key {self.name!r}: {len(failed)} of {len(chunk)} "
                    f"items failed; check the key, the context and the {action} inputs",
                    key=self.name,
                    mount=self.mount,
                )
            return [str(r[field]) for r in results]

        if len(chunks) <= 1 or concurrency == 1:
            outputs = [send(c) for c in chunks]
        else:
            with ThreadPoolExecutor(
                max_workers=min(concurrency, len(chunks)), thread_name_prefix="guardflow-transit"
            ) as pool:
                outputs = list(pool.map(send, chunks))
        flat = [out for chunk in outputs for out in chunk]
        return [flat[unique[value]] for value in inputs]
