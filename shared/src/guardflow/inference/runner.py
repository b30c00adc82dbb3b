"""Inference steps: score a table against a model server, write predictions, leave an audit event.

:func:`run_inference` (and its async twin :func:`arun_inference`) is what the Airflow operator,
the Prefect task and the CLI call. It reads the input, cuts it into batches, sends them with
bounded concurrency (see :mod:`guardflow.inference._scoring`), checkpoints each finished batch so a
retried step resends only what is missing, then writes the output (input columns plus a
prediction column) and, when rows failed, a dead-letter output with each row's error. Outputs are
written before the failure policy is applied: nothing is dropped. :func:`predict` does the same in
memory, without files or checkpoints.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from guardflow.audit import AuditRecorder, AuditSink, audit_step
from guardflow.errors import InferenceFailedRowsError
from guardflow.fingerprint import fingerprint_bytes, fingerprint_uri
from guardflow.identity import RunIdentity
from guardflow.inference._checkpoint import (
    BatchCheckpoint,
    CheckpointStore,
    default_checkpoint_dir,
)
from guardflow.inference._outputs import default_dead_letter_uri, write_outputs
from guardflow.inference._scoring import BatchFailure, Plan, ProgressCallback, Scored, score
from guardflow.inference.config import InferenceConfig
from guardflow.inference.results import InferenceSummary, LatencyStats
from guardflow.tables import json_default, read_table, safe_uri, table_format

__all__ = [
    "InferenceResult",
    "apredict",
    "arun_inference",
    "default_dead_letter_uri",
    "predict",
    "run_inference",
]

logger = logging.getLogger("guardflow.inference")

T = TypeVar("T")


@dataclass(frozen=True)
class InferenceResult:
    """In-memory result of :func:`predict`.

    Args:
        keys: Each row's key (``key_column``'s value, else its position), in input order.
        predictions: One prediction per key; ``None`` for a failed row.
        failed_keys: Keys of the rows that failed (allowed by the failure policy).
        model_name: Model name reported by the server (or configured).
        model_version: Model version reported by the server (or configured).
        summary: The step's summary.
    """

    keys: list[Any]
    predictions: list[Any]
    failed_keys: list[Any]
    model_name: str | None
    model_version: str | None
    summary: InferenceSummary


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="guardflow") as pool:
        return pool.submit(asyncio.run, coro).result()


def _model(scored: Scored, config: InferenceConfig) -> tuple[str | None, str | None]:
    done = [o for o in scored.outcomes if isinstance(o, BatchCheckpoint)]
    versions = {o.model_version for o in done}
    if len(versions) > 1:
        logger.warning("inference: the server answered with %d model versions", len(versions))
    last = done[-1] if done else None
    name = last.model_name if last and last.model_name else config.endpoint.model_name
    version = last.model_version if last and last.model_version else config.endpoint.model_version
    return name, version


def _summarize(
    plan: Plan,
    scored: Scored,
    config: InferenceConfig,
    *,
    output_uri: str | None,
    dead_letter_uri: str | None,
) -> InferenceSummary:
    failed = sum(o.rows for o in scored.outcomes if isinstance(o, BatchFailure))
    latencies = sorted(scored.latencies_ms)

    def pick(q: float) -> float:
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] if latencies else 0.0

    name, version = _model(scored, config)
    return InferenceSummary(
        rows=plan.rows,
        succeeded=plan.rows - failed,
        failed=failed,
        batches=plan.batches,
        batches_resumed=scored.resumed,
        output_uri=output_uri,
        dead_letter_uri=dead_letter_uri if failed else None,
        model_name=name,
        model_version=version,
        step_key=plan.step_key,
        duration_s=round(scored.seconds, 3),
        rows_per_second=round(scored.rows_sent / scored.seconds, 1) if scored.seconds else 0.0,
        latency_ms=LatencyStats(
            p50=pick(0.5), p95=pick(0.95), max=latencies[-1] if latencies else 0.0
        ),
        errors=dict(Counter(o.error_type for o in scored.outcomes if isinstance(o, BatchFailure))),
    )


def _start_record(audit: AuditRecorder, plan: Plan, config: InferenceConfig) -> None:
    """Record what is known before any request, so a failed probe still leaves a useful event."""
    audit.set_input("input", plan.input_fingerprint)
    audit.set_model(config.endpoint.model_name, config.endpoint.model_version)
    audit.counts.update(rows=plan.rows, batches=plan.batches)
    audit.attributes.update(step_key=plan.step_key, protocol=config.endpoint.protocol.value)


def _record(audit: AuditRecorder, summary: InferenceSummary) -> None:
    audit.set_model(summary.model_name, summary.model_version)
    audit.counts.update(
        succeeded=summary.succeeded,
        failed=summary.failed,
        batches_resumed=summary.batches_resumed,
    )


def _enforce(
    summary: InferenceSummary, scored: Scored, config: InferenceConfig, *, where: str
) -> None:
    """Raise when more rows failed than the failure policy allows.

    The error is retryable when every failure was (timeouts, unreachable server, 429/5xx): an
    orchestrator retry then resends just the failed batches. Malformed answers and 4xx are not.
    """
    if not summary.failed:
        return
    share, allowed = summary.failed / summary.rows, config.failure.max_failed_fraction
    if share <= allowed:
        logger.warning("inference: %d rows failed (within the failure policy)", summary.failed)
        return
    common = max(summary.errors, key=lambda k: summary.errors[k])
    error = InferenceFailedRowsError(
        f"{summary.failed} of {summary.rows} rows failed ({share:.1%}; the policy allows "
        f"{allowed:.1%}), mostly {common}; {where}. Fix the cause and retry: finished batches "
        "are not sent again",
        summary=summary.to_dict(),
    )
    failures = [o for o in scored.outcomes if isinstance(o, BatchFailure)]
    error.retryable = all(o.retryable for o in failures)
    raise error


async def arun_inference(
    source: Any,
    output: str | os.PathLike[str],
    config: InferenceConfig,
    *,
    identity: RunIdentity | None = None,
    dead_letter: str | None = None,
    checkpoint_dir: str | None = None,
    progress: ProgressCallback | None = None,
    audit_sink: AuditSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> InferenceSummary:
    """Score ``source`` against ``config.endpoint`` and write the predictions to ``output``.

    Args:
        source: Records, a pandas or polars DataFrame, a pyarrow Table, or a .parquet/.csv/.jsonl
            path or URI.
        output: Where predictions go (.parquet or .jsonl path or URI), written atomically: the
            input columns plus ``config.prediction_column``, for the rows that succeeded.
        config: Endpoint, batching, retry and failure policy.
        identity: The run identity; with the input it makes the step key (and Idempotency-Keys).
        dead_letter: Where failed rows go with their error (default: beside ``output``).
        checkpoint_dir: Where finished batches are checkpointed (default: beside ``output``).
        progress: Called as ``progress(rows_done, rows_total)`` after each batch.
        audit_sink: Where the audit event goes (default :func:`guardflow.audit.default_sink`).
        transport: An httpx async transport (tests, proxies).

    Returns:
        The step's summary.

    Raises:
        InferenceFailedRowsError: More rows failed than ``config.failure`` allows; both outputs were
            written first and the checkpoints are kept, so a retry sends only the failed batches.
        EndpointNotReadyError: The readiness probe failed.
        InputDataError: The input is missing, unreadable, empty or lacks a configured column.
        OutputWriteError: An output could not be written.

    Examples:
        >>> summary = await arun_inference("in.parquet", "out.parquet", config)  # doctest: +SKIP
    """
    output = os.fspath(output)
    table_format(output)  # a bad output name fails before any request is sent
    dead = dead_letter or default_dead_letter_uri(output)
    with audit_step("inference", identity=identity, sink=audit_sink) as audit:
        table = await asyncio.to_thread(read_table, source)
        plan = Plan.build(table, config, identity or RunIdentity())
        _start_record(audit, plan, config)
        # The step key is always part of the folder, so a chosen checkpoint_dir shared by runs or
        # inputs never hands one run's predictions to another.
        location = (
            f"{checkpoint_dir.rstrip('/')}/{plan.step_key}"
            if checkpoint_dir
            else default_checkpoint_dir(output, plan.step_key)
        )
        store = CheckpointStore(location)
        scored = await score(plan, config, store=store, progress=progress, transport=transport)
        any_failed = await asyncio.to_thread(
            write_outputs, plan, scored, config.prediction_column, output, dead
        )
        summary = _summarize(
            plan, scored, config, output_uri=safe_uri(output), dead_letter_uri=safe_uri(dead)
        )
        _record(audit, summary)
        audit.set_output("output", await asyncio.to_thread(fingerprint_uri, output))
        if any_failed:
            audit.set_output("dead_letter", await asyncio.to_thread(fingerprint_uri, dead))
        _enforce(
            summary,
            scored,
            config,
            where=f"the failed rows and their errors are in {safe_uri(dead)}",
        )
        await asyncio.to_thread(store.clear)
        logger.info(
            "inference: %d rows scored, %d failed, written to %s",
            summary.succeeded,
            summary.failed,
            safe_uri(output),
        )
        return summary


def run_inference(
    source: Any,
    output: str | os.PathLike[str],
    config: InferenceConfig,
    *,
    identity: RunIdentity | None = None,
    dead_letter: str | None = None,
    checkpoint_dir: str | None = None,
    progress: ProgressCallback | None = None,
    audit_sink: AuditSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> InferenceSummary:
    """Synchronous :func:`arun_inference` (same arguments, returns and errors).

    Examples:
        >>> from guardflow.inference import InferenceConfig, run_inference
        >>> config = InferenceConfig.model_validate({"endpoint": {"url": "http://127.0.0.1:5001"}})
        >>> run_inference("in.parquet", "out.parquet", config).failed  # doctest: +SKIP
        0
    """
    return _run_sync(
        arun_inference(
            source,
            output,
            config,
            identity=identity,
            dead_letter=dead_letter,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
            audit_sink=audit_sink,
            transport=transport,
        )
    )


async def apredict(
    source: Any,
    config: InferenceConfig,
    *,
    identity: RunIdentity | None = None,
    progress: ProgressCallback | None = None,
    audit_sink: AuditSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> InferenceResult:
    """Score ``source`` in memory: no output file, no checkpoints.

    Args:
        source: As for :func:`arun_inference`.
        config: Endpoint, batching, retry and failure policy.
        identity: The run identity (for the Idempotency-Keys and the audit event).
        progress: Called as ``progress(rows_done, rows_total)`` after each batch.
        audit_sink: Where the audit event goes.
        transport: An httpx async transport.

    Returns:
        Keys and predictions in input order, model name/version and the summary.

    Raises:
        InferenceFailedRowsError: More rows failed than ``config.failure`` allows.
        EndpointNotReadyError: The readiness probe failed.
        InputDataError: The input is missing, unreadable, empty or lacks a configured column.
    """
    with audit_step("inference", identity=identity, sink=audit_sink) as audit:
        table = await asyncio.to_thread(read_table, source)
        plan = Plan.build(table, config, identity or RunIdentity())
        _start_record(audit, plan, config)
        scored = await score(plan, config, store=None, progress=progress, transport=transport)
        summary = _summarize(plan, scored, config, output_uri=None, dead_letter_uri=None)
        _record(audit, summary)
        keys: list[Any] = (
            table.column(config.key_column).to_pylist()
            if config.key_column
            else list(range(plan.rows))
        )
        predictions: list[Any] = []
        failed_keys: list[Any] = []
        for outcome in scored.outcomes:
            if isinstance(outcome, BatchCheckpoint):
                predictions.extend(outcome.predictions)
            else:
                predictions.extend([None] * outcome.rows)
                failed_keys.extend(keys[outcome.start : outcome.start + outcome.rows])
        encoded = json.dumps(predictions, default=json_default, sort_keys=True).encode()
        audit.set_output("predictions", fingerprint_bytes(encoded))
        _enforce(
            summary, scored, config, where="no output was written (predict keeps results in memory)"
        )
        return InferenceResult(
            keys, predictions, failed_keys, summary.model_name, summary.model_version, summary
        )


def predict(
    source: Any,
    config: InferenceConfig,
    *,
    identity: RunIdentity | None = None,
    progress: ProgressCallback | None = None,
    audit_sink: AuditSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> InferenceResult:
    """Synchronous :func:`apredict` (same arguments, returns and errors).

    Examples:
        >>> predict([{"x": 1.0}], config).predictions  # doctest: +SKIP
        [2.0]
    """
    return _run_sync(
        apredict(
            source,
            config,
            identity=identity,
            progress=progress,
            audit_sink=audit_sink,
            transport=transport,
        )
    )
