"""What the check operators (drift, data quality) share: the policy applied when a check fails.

A check that ran and found a problem (the data drifted, the suite failed) is not an error of the
step, so it never goes through Airflow's retries: the operator's ``on_failure`` decides:
``fail`` fails the task at once, ``warn`` logs a warning and lets the task succeed, ``skip``
marks the task skipped so that its downstream tasks (default trigger rule) are skipped too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from guardflow.checks import OnFailure, name_list, validate_on_failure
from guardflow_airflow._compat import AirflowSkipException

if TYPE_CHECKING:
    from guardflow.errors import GuardflowError

__all__ = ["OnFailure", "apply_policy", "check_policy", "name_list", "task_ids"]


def check_policy(value: str) -> OnFailure:
    """Validate an ``on_failure`` argument when the DAG is parsed, not when the task runs.

    Args:
        value: The operator's ``on_failure`` argument.

    Returns:
        The value, typed.

    Raises:
        ValueError: The value is not ``fail``, ``warn`` or ``skip`` (Airflow's convention for a
            bad operator argument, so the DAG fails to import with the reason).
    """
    from guardflow.errors import ConfigurationError

    try:
        return validate_on_failure(value)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from None


def apply_policy(policy: OnFailure, error: GuardflowError, *, log: Any) -> None:
    """Act on a failed check according to ``policy``; return only when the task should succeed.

    Call it inside :func:`guardflow_airflow._runtime.guardflow_error_boundary`, which turns the
    re-raised (non-retryable) error into ``AirflowFailException``: the task fails without
    spending retries, since repeating the check on the same data gives the same answer.

    Args:
        policy: ``fail``, ``warn`` or ``skip``.
        error: The core error describing the failed check (its message names columns, never
            values).
        log: The task's logger.

    Raises:
        GuardflowError: ``error`` itself, when the policy is ``fail``.
        AirflowSkipException: When the policy is ``skip``.
    """
    if policy == "fail":
        raise error
    if policy == "skip":
        raise AirflowSkipException(f"{error} (on_failure='skip': downstream tasks are skipped)")
    log.warning("%s (on_failure='warn': the task succeeds)", error)


def task_ids(value: str | Iterable[str]) -> list[str]:
    """Return a branch operator's ``follow_task_ids_*`` argument as a list of ids.

    Args:
        value: One task (or task group) id, or several.

    Returns:
        The ids, as a list.
    """
    return [value] if isinstance(value, str) else list(value)
