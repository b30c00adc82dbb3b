"""Mask or scan text, records, tables and files for PII, as a policy says.

Every entry point returns (or carries) a :class:`~guardflow.pii.PIIReport` of counts per column and
entity type, never a value. :func:`mask_table`, :func:`scan_table`, :func:`mask_file` and
:func:`scan_file` each leave one audit event (kind ``"pii"``) with those counts.

Examples:
    >>> from guardflow.pii import PIIPolicy, mask_records
    >>> policy = PIIPolicy.model_validate({"columns": {"ssn": {"entity": "US_SSN"}}})
    >>> rows, report = mask_records([{"ssn": "123-45-6789", "id": 1}], policy)
    >>> rows, report.counts
    ([{'ssn': '<US_SSN>', 'id': 1}], {'ssn': {'US_SSN': 1}})
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from guardflow.audit import AuditRecorder, AuditSink, audit_step
from guardflow.pii import _stream
from guardflow.pii._engine import Engine, Mode
from guardflow.pii.actions import TOKEN_PATTERN, Masker
from guardflow.pii.policy import PIIPolicy
from guardflow.pii.report import PIIReport

if TYPE_CHECKING:
    from guardflow.identity import RunIdentity
    from guardflow.secrets.client import VaultClient

__all__ = [
    "detokenize",
    "mask_file",
    "mask_records",
    "mask_table",
    "mask_text",
    "scan_file",
    "scan_table",
]

PolicyLike = PIIPolicy | dict[str, Any] | str | os.PathLike[str] | None


def mask_text(
    text: str | None, policy: PolicyLike = None, *, vault: VaultClient | None = None
) -> str | None:
    """Mask the PII in one string (every configured type is looked for).

    Args:
        text: The text (``None`` is returned as is).
        policy: A :class:`PIIPolicy`, a dict, a YAML path, or ``None`` (replace with ``<TYPE>``).
        vault: Needed by ``tokenize`` and ``hash_key_ref``.

    Returns:
        The masked text.

    Raises:
        PIIPolicyError: The policy is invalid or needs a Vault client that was not given.
    """
    if text is None:
        return None
    engine = Engine(PIIPolicy.load(policy), vault)
    rule = engine.plan(["text"], ["text"]).get("text")
    from guardflow.pii.policy import ColumnRule

    out = engine.values("text", rule or ColumnRule(free_text=True), [text], [0], set())
    return out[0]


def mask_records(
    records: Sequence[dict[str, Any]], policy: PolicyLike, *, vault: VaultClient | None = None
) -> tuple[list[dict[str, Any]], PIIReport]:
    """Mask records (nested JSON allowed; column rules may select JSON paths).

    Args:
        records: Dicts, one per row; they are not modified (masked copies are returned).
        policy: The policy (see :func:`mask_text`).
        vault: Needed by ``tokenize`` and ``hash_key_ref``.

    Returns:
        The masked records and the report.

    Raises:
        PIIPolicyError: The policy is invalid or needs a Vault client that was not given.
    """
    start = time.perf_counter()
    engine = Engine(PIIPolicy.load(policy), vault)
    out = engine.records(list(records))
    report = engine.report()
    report.duration_s = time.perf_counter() - start
    return out, report


def mask_table(
    source: Any,
    policy: PolicyLike,
    *,
    vault: VaultClient | None = None,
    identity: RunIdentity | None = None,
    audit_sink: AuditSink | None = None,
    workers: int = 1,
) -> tuple[Any, PIIReport]:
    """Mask a pandas or polars DataFrame, an Arrow table, or records; return an Arrow table.

    Args:
        source: The data (anything :func:`guardflow.tables.read_table` reads).
        policy: The policy (see :func:`mask_text`).
        vault: Needed by ``tokenize`` and ``hash_key_ref``.
        identity: The run identity for the audit event.
        audit_sink: Where the audit event goes (default: the audit file).
        workers: Processes that detect in free-text columns (default 1: this one). The
            output and report are the same for any number; more workers divide the time of
            large batches (see the PII guide, "Workers").

    Returns:
        ``(masked pyarrow.Table, PIIReport)``.

    Raises:
        PIIPolicyError: The policy is invalid or needs a Vault client that was not given.
        InputDataError: The input cannot be read or has no rows.
        ConfigurationError: ``workers`` is not a whole number of at least 1.
        GuardflowError: A detection worker process died (retryable).
    """
    return _table(source, PIIPolicy.load(policy), vault, "mask", identity, audit_sink, workers)


def scan_table(
    source: Any,
    policy: PolicyLike = None,
    *,
    identity: RunIdentity | None = None,
    audit_sink: AuditSink | None = None,
    workers: int = 1,
) -> PIIReport:
    """Count the PII in a table without changing it (see :func:`mask_table` for arguments).

    Returns:
        The report; ``report.violations`` holds what ``policy.allow`` does not permit and
        ``report.raise_for_violations()`` raises :class:`~guardflow.errors.PIIFoundError`.
    """
    return _table(source, PIIPolicy.load(policy), None, "scan", identity, audit_sink, workers)[1]


def _table(
    source: Any,
    policy: PIIPolicy,
    vault: VaultClient | None,
    mode: Mode,
    identity: RunIdentity | None,
    audit_sink: AuditSink | None,
    workers: int,
) -> tuple[Any, PIIReport]:
    from guardflow.fingerprint import fingerprint_table
    from guardflow.tables import read_table

    start = time.perf_counter()
    with audit_step("pii", identity=identity, sink=audit_sink) as rec:
        rec.attributes["mode"] = mode
        table = read_table(source)
        fingerprint = fingerprint_table(table)
        rec.set_input("table", fingerprint)
        engine = Engine(policy, vault, mode=mode, workers=workers)
        try:
            out = engine.table(table)
        finally:
            engine.close()
        report = engine.report()
        report.input_fingerprint = fingerprint
        report.duration_s = time.perf_counter() - start
        _record(rec, report)
    return out, report


def mask_file(
    input_uri: str | os.PathLike[str],
    output_uri: str | os.PathLike[str],
    policy: PolicyLike,
    *,
    vault: VaultClient | None = None,
    identity: RunIdentity | None = None,
    audit_sink: AuditSink | None = None,
    batch_rows: int = _stream.BATCH_ROWS,
    workers: int = 1,
) -> PIIReport:
    """Mask a Parquet, CSV or JSONL file into another, batch by batch, in bounded memory.

    Each batch (a Parquet row group slice, a CSV block, ``batch_rows`` JSONL lines) is masked and
    written before the next is read. The output is written to a temporary file and renamed (or
    uploaded) only when complete: a failure leaves nothing at ``output_uri``.

    Args:
        input_uri: A ``.parquet``, ``.csv`` or ``.jsonl`` path or URI.
        output_uri: Where the masked file goes; its suffix picks its format.
        policy: The policy (see :func:`mask_text`).
        vault: Needed by ``tokenize`` and ``hash_key_ref``.
        identity: The run identity for the audit event.
        audit_sink: Where the audit event goes (default: the audit file).
        batch_rows: Rows per Parquet/JSONL batch.
        workers: Processes that detect in free-text columns (default 1: this one). The
            output and report are the same for any number; more workers divide the time of
            large batches (see the PII guide, "Workers").

    Returns:
        The report (``output_uri`` without credentials).

    Raises:
        PIIPolicyError: The policy is invalid or needs a Vault client that was not given.
        InputDataError: The input is missing or unreadable.
        OutputWriteError: The output could not be written.
        ConfigurationError: ``workers`` is not a whole number of at least 1.
        GuardflowError: A detection worker process died (retryable); nothing was written.
    """
    from guardflow.fingerprint import fingerprint_uri
    from guardflow.tables import safe_uri

    resolved = PIIPolicy.load(policy)
    src, dst = os.fspath(input_uri), os.fspath(output_uri)
    start = time.perf_counter()
    with audit_step("pii", identity=identity, sink=audit_sink) as rec:
        rec.attributes["mode"] = "mask"
        engine = Engine(resolved, vault, workers=workers)
        fingerprint = fingerprint_uri(src)
        rec.set_input("input", fingerprint)

        def batches() -> Iterator[Any]:
            for batch in _stream.read_batches(src, batch_rows=batch_rows):
                yield _one(engine, batch)

        try:
            _stream.write_batches(dst, batches)
        finally:
            engine.close()
        rec.set_output("output", fingerprint_uri(dst))
        report = engine.report()
        report.input_fingerprint = fingerprint
        report.output_uri = safe_uri(dst)
        report.duration_s = time.perf_counter() - start
        _record(rec, report)
    return report


def scan_file(
    input_uri: str | os.PathLike[str],
    policy: PolicyLike = None,
    *,
    identity: RunIdentity | None = None,
    audit_sink: AuditSink | None = None,
    batch_rows: int = _stream.BATCH_ROWS,
    workers: int = 1,
) -> PIIReport:
    """Count the PII in a Parquet, CSV or JSONL file, batch by batch (see :func:`mask_file`).

    Returns:
        The report (see :func:`scan_table`).
    """
    from guardflow.fingerprint import fingerprint_uri

    resolved = PIIPolicy.load(policy)
    src = os.fspath(input_uri)
    start = time.perf_counter()
    with audit_step("pii", identity=identity, sink=audit_sink) as rec:
        rec.attributes["mode"] = "scan"
        engine = Engine(resolved, mode="scan", workers=workers)
        fingerprint = fingerprint_uri(src)
        rec.set_input("input", fingerprint)
        try:
            for batch in _stream.read_batches(src, batch_rows=batch_rows):
                _one(engine, batch)
        finally:
            engine.close()
        report = engine.report()
        report.input_fingerprint = fingerprint
        report.duration_s = time.perf_counter() - start
        _record(rec, report)
    return report


def detokenize(
    tokens: Sequence[str | None], policy: PolicyLike, *, vault: VaultClient
) -> list[str | None]:
    """Turn ``tokenize`` output back into the original values (needs Vault ``decrypt``).

    Each item may be a bare token or text holding tokens (each is replaced by its value);
    ``None`` stays ``None``; text without tokens is returned as is.

    Args:
        tokens: Tokens, or masked texts.
        policy: The policy that tokenized them (its ``transit_key`` / ``transit_mount``).
        vault: A client whose Vault policy grants ``update`` on ``<mount>/decrypt/<key>``.

    Returns:
        The values, in order.

    Raises:
        VaultPermissionError: The caller may not decrypt with the key.
        TransitError: A token is from another key or was altered.
    """
    found = [list(TOKEN_PATTERN.finditer(t)) if t else [] for t in tokens]
    distinct = list(dict.fromkeys(m.group(0) for matches in found for m in matches))
    plain = dict(
        zip(distinct, Masker(PIIPolicy.load(policy), vault).detokenize(distinct), strict=True)
    )
    out: list[str | None] = []
    for text, matches in zip(tokens, found, strict=True):
        if text is None or not matches:
            out.append(text)
            continue
        out.append(TOKEN_PATTERN.sub(lambda m: plain[m.group(0)], text))
    return out


def _one(engine: Engine, batch: Any) -> Any:
    return engine.records(batch) if isinstance(batch, list) else engine.table(batch)


def _record(rec: AuditRecorder, report: PIIReport) -> None:
    rec.counts["rows_scanned"] = report.rows_scanned
    rec.counts["rows_touched"] = report.rows_touched
    rec.counts["bytes_scanned"] = report.bytes_scanned
    rec.counts["batches"] = report.batches
    rec.counts["entities"] = report.total
    for kind, count in report.by_type().items():
        rec.counts[f"entities.{kind}"] = count
    rec.attributes["columns"] = ",".join(report.columns_scanned)
