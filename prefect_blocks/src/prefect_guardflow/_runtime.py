"""Glue shared by every guardflow task: identity, retry condition, logs, progress artifacts.

Each capability's tasks (inference, PII, drift, gates) need the same things from Prefect: a
:class:`~guardflow.identity.RunIdentity` that stays the same across retries, a
``retry_condition_fn`` that retries only what guardflow marks retryable, guardflow's log lines in
the run's logs, and a progress artifact that moves as the step advances. They live here once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from guardflow.errors import GuardflowError
from guardflow.identity import RunIdentity

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.tasks import Task

__all__ = [
    "AsyncProgressReporter",
    "ProgressReporter",
    "retry_on_retryable_error",
    "run_identity",
    "send_core_logs_to_prefect",
]

_logger = logging.getLogger("prefect.guardflow")

# async_dispatch-wrapped Prefect helpers pick their async twin whenever a loop is running in the
# calling thread; the core may report progress from such a thread, so the sync twin is forced.
_SYNC: dict[str, Any] = {"_sync": True}


def run_identity() -> RunIdentity:
    """Describe the current Prefect task run as an orchestrator-neutral identity.

    The identity holds the flow name, the flow run id and the task name, none of which change when
    Prefect retries the task (in-process task retries or a retry of the whole flow run), so the
    step key derived from it is the same on every attempt and a retried task resumes where the
    failed attempt stopped. The attempt number is recorded but is not part of the step key.

    Returns:
        The identity; an ad-hoc ``prefect`` identity when called outside any run.
    """
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    flow_ctx = FlowRunContext.get()
    pipeline = "adhoc"
    run_id = "local"
    task_id = "step"
    attempt = 1
    if flow_ctx is not None and flow_ctx.flow is not None:
        pipeline = flow_ctx.flow.name
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        run_id = str(flow_ctx.flow_run.id)
    if task_ctx is not None:
        task_id = task_ctx.task.name
        attempt = max(task_ctx.task_run.run_count, 1)
        if flow_ctx is None or flow_ctx.flow_run is None:
            # A task called outside a flow: its own run id is what stays fixed across retries.
            run_id = str(task_ctx.task_run.flow_run_id or task_ctx.task_run.id)
    return RunIdentity(
        orchestrator="prefect",
        pipeline=pipeline,
        run_id=run_id,
        task_id=task_id,
        attempt=attempt,
    )


def retry_on_retryable_error(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """``retry_condition_fn`` for Prefect tasks: retry only errors guardflow marks retryable.

    Server back-pressure, timeouts, a server that went away or is not ready yet are worth another
    attempt (which resumes from the step's checkpoint); a bad request, a malformed answer or a
    configuration error are not, and retrying them would only repeat the failure. Too many failed
    rows count as retryable only when every failed batch failed on a retryable cause: the core
    decides, this function only reads its flag.

    Args:
        task: The task (unused; part of Prefect's signature).
        task_run: The failing task run (unused; part of Prefect's signature).
        state: The failed state; its data is the raised exception.

    Returns:
        ``True`` when the exception is a :class:`~guardflow.errors.GuardflowError` whose
        ``retryable`` flag is set.
    """
    exc = state.data
    return isinstance(exc, GuardflowError) and exc.retryable


def _in_prefect_run(record: logging.LogRecord) -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


def send_core_logs_to_prefect() -> None:
    """Show guardflow's own log lines (progress, resumed batches, failures) in Prefect's run logs.

    Adds Prefect's API log handler to the ``guardflow`` logger, once per process, passing only
    records emitted inside a flow or task run (the handler reads the run from the context, so
    concurrent tasks keep their own lines). Does nothing when ``PREFECT_LOGGING_EXTRA_LOGGERS``
    already routes ``guardflow``. Lowers the logger to INFO only when nobody configured a level.
    guardflow never logs data values or secrets, so nothing is added that needs redacting.
    """
    from prefect.logging.handlers import APILogHandler

    core = logging.getLogger("guardflow")
    if any(isinstance(h, APILogHandler) for h in core.handlers):
        return
    handler = APILogHandler()
    handler.addFilter(_in_prefect_run)
    core.addHandler(handler)
    if core.level == logging.NOTSET:
        core.setLevel(logging.INFO)


def _percent(done: int, total: int) -> int:
    if total <= 0:
        return 100
    return min(100, 100 * done // total)


class ProgressReporter:
    """Mirror a step's ``progress(done, total)`` callback into a Prefect progress artifact.

    The artifact moves whenever the whole-number percentage does, so a step with thousands of
    batches makes at most a hundred API calls. (Rows done and rows/s are logged by the core.)
    Updates are best effort: a failed update logs a warning and stops further updates, it never
    interrupts the scoring it reports on.

    Args:
        key: Artifact key (lowercase letters, digits and dashes), or ``None`` for an unkeyed one.
        description: Artifact description.
    """

    def __init__(self, *, key: str | None, description: str) -> None:
        self.key = key
        self.description = description
        self.artifact_id: UUID | None = None
        self._sent = 0

    def start(self) -> UUID:
        """Create the artifact at 0%.

        Returns:
            The artifact id.
        """
        from prefect.artifacts import create_progress_artifact

        artifact_id = cast(
            UUID, create_progress_artifact(0.0, key=self.key, description=self.description, **_SYNC)
        )
        self.artifact_id = artifact_id
        return artifact_id

    def __call__(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` rows are finished."""
        from prefect.artifacts import update_progress_artifact

        percent = self._advance(done, total)
        if percent is not None and self.artifact_id is not None:
            try:
                update_progress_artifact(self.artifact_id, float(percent), **_SYNC)
            except Exception as exc:  # a progress bar is not worth failing the step for
                self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        self.artifact_id = None
        _logger.warning(
            "progress artifact %r could not be updated (%s); scoring goes on without it",
            self.key,
            type(exc).__name__,
        )

    def _advance(self, done: int, total: int) -> int | None:
        """Return the percentage to send when it moved, else ``None``."""
        percent = _percent(done, total)
        if percent <= self._sent:
            return None
        self._sent = percent
        return percent


class AsyncProgressReporter(ProgressReporter):
    """:class:`ProgressReporter` for async tasks: updates never block the event loop.

    The core calls ``progress`` synchronously; here it only records the latest percentage and
    wakes one background coroutine that sends it, so at most one update is in flight and the last
    one sent is always the highest. :meth:`aclose` waits for the final update.
    """

    def __init__(self, *, key: str | None, description: str) -> None:
        super().__init__(key=key, description=description)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latest: int | None = None
        self._drain: asyncio.Task[None] | None = None

    async def astart(self) -> UUID:
        """Create the artifact at 0% and bind to the running loop.

        Returns:
            The artifact id.
        """
        from prefect.artifacts import acreate_progress_artifact

        self._loop = asyncio.get_running_loop()
        self.artifact_id = await acreate_progress_artifact(
            0.0, key=self.key, description=self.description
        )
        return self.artifact_id

    def __call__(self, done: int, total: int) -> None:
        """Record progress; safe to call from the loop's thread or any other."""
        percent = self._advance(done, total)
        if percent is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake, percent)

    def _wake(self, percent: int) -> None:
        self._latest = percent
        if self._drain is None or self._drain.done():
            self._drain = asyncio.ensure_future(self._send_latest())

    async def _send_latest(self) -> None:
        from prefect.artifacts import aupdate_progress_artifact

        while self._latest is not None and self.artifact_id is not None:
            percent, self._latest = self._latest, None
            try:
                await aupdate_progress_artifact(self.artifact_id, float(percent))
            except Exception as exc:  # a progress bar is not worth failing the step for
                self._give_up(exc)

    async def aclose(self) -> None:
        """Wait until the latest recorded progress has reached the API."""
        # Callbacks queued by call_soon_threadsafe run on the next loop iteration: yield once.
        await asyncio.sleep(0)
        if self._drain is not None:
            await self._drain
