"""The scoring loop: cut a table into batches, send them with bounded concurrency, keep outcomes.

Batches are independent: each is sent with its own Idempotency-Key (``<step key>-<index>``,
identical on every retry), and ends either as a checkpoint (its predictions) or as a failure (the
error's type and message; the message never holds row values). Nothing here writes outputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from guardflow.errors import InferenceError, InputDataError
from guardflow.fingerprint import fingerprint_table
from guardflow.identity import RunIdentity, step_key
from guardflow.inference._checkpoint import BatchCheckpoint, CheckpointStore
from guardflow.inference.client import AsyncInferenceClient
from guardflow.inference.config import InferenceConfig

__all__ = ["BatchFailure", "Plan", "Scored", "score"]

logger = logging.getLogger("guardflow.inference")

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchFailure:
    """A batch that failed for good: every one of its rows goes to the dead-letter output."""

    index: int
    start: int
    rows: int
    error_type: str
    message: str
    retryable: bool = False


def _purpose(config: InferenceConfig, columns: list[str]) -> str:
    """What makes two attempts "the same step": everything that changes what is sent or parsed.

    The URL, token, timeouts, retries and concurrency are left out on purpose: changing them (a
    fail-over endpoint, a longer timeout) must not throw finished batches away.
    """
    ep = config.endpoint
    parts = [
        ep.protocol.value,
        ep.model_name,
        ep.model_version,
        ep.api_name,
        ep.json_request_key,
        ep.json_response_path,
        ep.prompt_column,
        ep.system_prompt,
        ep.v2_input_name,
        ep.v2_output_name,
        sorted(ep.openai_params.items()),
        columns,
        config.batching.batch_size,
    ]
    return "inference:" + repr(parts)


@dataclass
class Plan:
    """How one table is cut into batches, and the step's keys."""

    table: Any
    columns: list[str]
    batch_size: int
    input_fingerprint: str
    step_key: str
    _sent: Any = field(default=None, repr=False)

    @classmethod
    def build(cls, table: Any, config: InferenceConfig, identity: RunIdentity) -> Plan:
        """Check the columns and derive the step key.

        Raises:
            InputDataError: A configured column is missing, or there is nothing to send.
        """
        names = list(table.column_names)
        wanted = [c for c in (config.key_column, *(config.input_columns or [])) if c]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise InputDataError(
                f"the input has no column(s) {missing}; it has {names}: fix key_column or "
                "input_columns"
            )
        if config.prediction_column in names:
            raise InputDataError(
                f"the input already has a {config.prediction_column!r} column; set "
                "prediction_column to another name"
            )
        columns = config.input_columns or [c for c in names if c != config.key_column]
        if not columns:
            raise InputDataError("there are no input columns to send besides the key column")
        fingerprint = fingerprint_table(table)
        key = step_key(identity, fingerprint, purpose=_purpose(config, columns))
        return cls(table, columns, config.batching.batch_size, fingerprint, key)

    @property
    def rows(self) -> int:
        """Rows in the table."""
        return int(self.table.num_rows)

    @property
    def batches(self) -> int:
        """Batches in the table."""
        return -(-self.rows // self.batch_size)

    def bounds(self, index: int) -> tuple[int, int]:
        """First row and row count of batch ``index``."""
        start = index * self.batch_size
        return start, min(self.batch_size, self.rows - start)

    def batch_rows(self, index: int) -> list[dict[str, Any]]:
        """The rows of batch ``index``, restricted to the columns sent."""
        start, count = self.bounds(index)
        if self._sent is None:
            self._sent = self.table.select(self.columns)
        return list(self._sent.slice(start, count).to_pylist())

    def idempotency_key(self, index: int) -> str:
        """Idempotency-Key of batch ``index``: the same on every retry, different per batch."""
        return f"{self.step_key}-{index}"


@dataclass
class Scored:
    """Outcome of every batch of a plan, in batch order."""

    outcomes: list[BatchCheckpoint | BatchFailure]
    resumed: int
    rows_sent: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)


class _Progress:
    """Calls the progress callback after each batch and logs rows done/total and rows/s."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self.sent = total, 0, 0
        self._callback = callback
        self._started = time.monotonic()
        self._next_log = 0.1

    def advance(self, rows: int, *, sent: bool) -> None:
        self.done += rows
        self.sent += rows if sent else 0
        if self._callback is not None:
            self._callback(self.done, self.total)
        share = self.done / self.total
        if share >= self._next_log or self.done == self.total:
            self._next_log = (int(share * 10) + 1) / 10
            elapsed = max(time.monotonic() - self._started, 1e-9)
            logger.info(
                "inference: %d/%d rows done (%.0f%%), %.1f rows/s",
                self.done,
                self.total,
                share * 100,
                self.sent / elapsed,
            )


async def _bounded(
    indexes: list[int], work: Callable[[int], Coroutine[Any, Any, None]], limit: int
) -> None:
    """Run ``work(i)`` for each index, at most ``limit`` at once; tasks are created lazily."""
    slots = asyncio.Semaphore(limit)
    running: set[asyncio.Task[None]] = set()
    crashed: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        slots.release()
        error = None if task.cancelled() else task.exception()
        if error is not None:
            crashed.append(error)

    try:
        for index in indexes:
            await slots.acquire()
            if crashed:
                slots.release()
                break
            task = asyncio.create_task(work(index))
            running.add(task)
            task.add_done_callback(finished)
        while running:
            await asyncio.wait(set(running))
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    if crashed:
        raise crashed[0]


async def score(
    plan: Plan,
    config: InferenceConfig,
    *,
    store: CheckpointStore | None,
    progress: ProgressCallback | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Scored:
    """Score every batch not already checkpointed; return each batch's outcome.

    Raises:
        EndpointNotReadyError: The readiness probe failed (only probed when a batch is to be sent).
    """
    started = time.monotonic()
    expected = {i: plan.bounds(i) for i in range(plan.batches)}
    done: dict[int, BatchCheckpoint] = {}
    if store is not None:
        done = (
            store.load(expected)
            if store.is_local
            else await asyncio.to_thread(store.load, expected)
        )
    outcomes: list[BatchCheckpoint | BatchFailure | None] = [
        done.get(i) for i in range(plan.batches)
    ]
    tracker = _Progress(plan.rows, progress)
    if done:
        logger.info("inference: resuming, %d of %d batches already done", len(done), plan.batches)
        tracker.advance(sum(c.rows for c in done.values()), sent=False)
    latencies: list[float] = []
    pending = [i for i in range(plan.batches) if i not in done]
    if pending:
        batching = config.batching
        async with AsyncInferenceClient(
            config.endpoint,
            retry=config.retry,
            transport=transport,
            limits=httpx.Limits(
                max_connections=batching.concurrency + 2,
                max_keepalive_connections=batching.concurrency,
            ),
            requests_per_second=batching.requests_per_second,
            max_in_flight=batching.concurrency,
        ) as client:
            if config.probe:
                await client.check_ready()

            async def one(index: int) -> None:
                start, count = plan.bounds(index)
                try:
                    answer = await client.predict_batch(
                        plan.batch_rows(index), idempotency_key=plan.idempotency_key(index)
                    )
                except InferenceError as exc:
                    outcomes[index] = BatchFailure(
                        index, start, count, type(exc).__name__, str(exc), exc.retryable
                    )
                    logger.warning(
                        "inference: batch %d failed for good (%s); its %d rows go to the "
                        "dead-letter output",
                        index,
                        type(exc).__name__,
                        count,
                    )
                else:
                    checkpoint = BatchCheckpoint(
                        index,
                        start,
                        count,
                        answer.predictions,
                        answer.model_name,
                        answer.model_version,
                        answer.latency_ms,
                    )
                    if store is not None and store.is_local:
                        store.save(checkpoint)
                    elif store is not None:
                        await asyncio.to_thread(store.save, checkpoint)
                    outcomes[index] = checkpoint
                    latencies.append(answer.latency_ms)
                tracker.advance(count, sent=True)

            try:
                await _bounded(pending, one, batching.concurrency)
            finally:
                if store is not None:
                    store.close()
    final = [o for o in outcomes if o is not None]
    return Scored(final, len(done), tracker.sent, time.monotonic() - started, latencies)
