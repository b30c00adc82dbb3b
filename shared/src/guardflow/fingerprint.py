"""Fingerprints: SHA-256 content hashes that identify data without revealing it.

A fingerprint is ``"sha256:<64 hex>"``. Audit events and step keys carry fingerprints, never
values. :func:`fingerprint_table` hashes a table's Arrow IPC stream in fixed-size batches after
dropping schema metadata, so it does not depend on how the table happened to be chunked; two tables
with equal values but different column types (``string`` vs ``large_string``) differ.

Examples:
    >>> fingerprint_bytes(b"abc")[:15]
    'sha256:ba7816bf'
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from guardflow._optional import require
from guardflow.errors import InputDataError
from guardflow.tables import local_path

__all__ = ["fingerprint_bytes", "fingerprint_table", "fingerprint_uri"]

_READ_CHUNK = 1 << 20
_BATCH_ROWS = 65_536


def fingerprint_bytes(data: bytes) -> str:
    """Return the fingerprint of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _HashSink:
    """A write-only file object that feeds what Arrow writes into a hash, holding nothing."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.closed = False
        self._size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self._size += len(data)
        return len(data)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def fingerprint_table(table: Any) -> str:
    """Return the fingerprint of a pyarrow Table's schema and values.

    Args:
        table: A :class:`pyarrow.Table` (see :func:`guardflow.tables.read_table` for other inputs).

    Returns:
        ``"sha256:<hex>"``; equal for equal tables however they are chunked.
    """
    ipc = require("pyarrow.ipc", "data")
    canonical = table.replace_schema_metadata(None).combine_chunks()
    sink = _HashSink()
    with ipc.new_stream(sink, canonical.schema) as writer:
        for batch in canonical.to_batches(max_chunksize=_BATCH_ROWS):
            writer.write_batch(batch)
    return "sha256:" + sink.hash.hexdigest()


def fingerprint_uri(uri: str | os.PathLike[str]) -> str:
    """Return the fingerprint of a file's bytes (local path, or a URI through fsspec).

    Raises:
        InputDataError: The file does not exist or cannot be read.
    """
    text = os.fspath(uri)
    digest = hashlib.sha256()
    try:
        path = local_path(text)
        if path is None:
            opened: Any = require("fsspec", "data").open(text, "rb")
        else:
            opened = open(path, "rb")  # noqa: SIM115 - closed by the with below
        with opened as fh:
            while chunk := fh.read(_READ_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise InputDataError(
            f"cannot fingerprint {text!r}: {exc.strerror or 'unreadable'}"
        ) from None
    return "sha256:" + digest.hexdigest()
