"""What every guardflow operator does at run time: identity from context, errors at the boundary.

Kept in one place so each operator (inference now; PII, drift, gates later) maps Airflow's task
context and guardflow's error tree the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from guardflow_airflow._compat import AirflowFailException

if TYPE_CHECKING:
    from guardflow.identity import RunIdentity

__all__ = ["guardflow_error_boundary", "run_identity"]


def run_identity(context: Any) -> RunIdentity:
    """Return the guardflow run identity of the running task instance.

    The identity holds what stays fixed across retries (DAG, run, task, map index), so a retried
    task derives the same step key and resumes; the try number is recorded as ``attempt``.

    Args:
        context: The Airflow task context passed to ``execute``.

    Returns:
        A :class:`guardflow.identity.RunIdentity` with ``orchestrator="airflow"``.
    """
    from guardflow.identity import RunIdentity

    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    return RunIdentity(
        orchestrator="airflow",
        pipeline=ti.dag_id,
        run_id=context.get("run_id") or ti.run_id,
        task_id=ti.task_id,
        map_index=-1 if map_index is None else int(map_index),
        attempt=max(int(getattr(ti, "try_number", 1) or 1), 1),
    )


@contextlib.contextmanager
def guardflow_error_boundary() -> Iterator[None]:
    """Convert guardflow errors into what Airflow's retry machinery understands.

    A retryable error (server not ready, timeouts, a failed write) is re-raised unchanged, so the
    task's ``retries`` apply and the next try resumes from its checkpoints. Anything else (bad
    configuration, bad input, rows beyond the failure policy) becomes
    :class:`~airflow.sdk.exceptions.AirflowFailException`: repeating the same step cannot fix it,
    so Airflow fails the task without spending retries.

    Raises:
        AirflowFailException: A non-retryable guardflow error occurred.
    """
    from guardflow.errors import GuardflowError

    try:
        yield
    except GuardflowError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
