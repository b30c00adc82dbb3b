"""What the check tasks (drift, data quality) share: the failure policy and artifact helpers.

A check that ran and found a problem (the data drifted, the suite failed) is a result, not an
error of the step: it is never retried, and the task's ``on_failure`` decides what happens.
``fail`` raises the core error (the task run fails), ``warn`` logs a warning and returns the
result, ``skip`` returns the result too, with a warning saying that downstream steps should
skip: Prefect has no skip state, so the flow branches on the returned result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from prefect import get_run_logger
from prefect.cache_policies import NONE

from guardflow.checks import OnFailure, name_list, validate_on_failure
from guardflow.errors import GuardflowError
from prefect_guardflow._runtime import retry_on_retryable_error

__all__ = [
    "TASK_OPTIONS",
    "OnFailure",
    "apply_policy",
    "check_policy",
    "log_to_mlflow",
    "markdown_table",
    "name_list",
    "outcome_text",
    "report_link",
    "table_key",
]

TASK_OPTIONS: dict[str, Any] = {
    # Only reading a remote input can fail in a way worth repeating (guardflow marks those errors
    # retryable); drift or a failed suite is a result and is never retried.
    "retries": 2,
    "retry_delay_seconds": [10, 60],
    "retry_condition_fn": retry_on_retryable_error,
    # Results would be pickled into result storage; reports are small and live in artifacts.
    "persist_result": False,
    "cache_policy": NONE,
}
"""Options of every check task: retries of retryable errors only, nothing persisted or cached."""


def check_policy(value: str) -> OnFailure:
    """Validate an ``on_failure`` argument before the check runs (see :mod:`guardflow.checks`).

    Raises:
        ConfigurationError: The value is not ``fail``, ``warn`` or ``skip``.
    """
    return validate_on_failure(value)


def apply_policy(policy: OnFailure, error: GuardflowError) -> str:
    """Act on a failed check according to ``policy``; return the outcome when the task goes on.

    Args:
        policy: ``fail``, ``warn`` or ``skip``.
        error: The core error describing the failed check (its message names columns and
            expectations, never values).

    Returns:
        The line logged as a warning (for the summary artifact).

    Raises:
        GuardflowError: ``error`` itself, when the policy is ``fail`` (not retried).
    """
    if policy == "fail":
        raise error
    if policy == "skip":
        line = f"{error} (on_failure='skip': downstream steps should skip)"
    else:
        line = f"{error} (on_failure='warn': the flow goes on)"
    get_run_logger().warning("%s", line)
    return line


def table_key(artifact_key: str | None) -> str | None:
    """Return the key of the per-column table artifact that goes with a summary artifact."""
    return f"{artifact_key}-columns" if artifact_key else None


def markdown_table(title: str, rows: Sequence[tuple[str, Any]], notes: Sequence[str] = ()) -> str:
    """Render a two-column markdown table under a heading, followed by note lines.

    Args:
        title: The heading.
        rows: ``(name, value)`` pairs; ``None`` values show as empty cells.
        notes: Paragraphs added after the table.

    Returns:
        The markdown text.
    """
    lines = [f"### {title}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {'' if value is None else value} |" for name, value in rows]
    for note in notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def report_link(uri: str | None) -> str | None:
    """Return a markdown link to a written report, or ``None`` when there is none.

    Args:
        uri: A URL, an object-store URI (linked as is) or a local absolute path (``file://``).

    Returns:
        ``[uri](url)``, or ``None``.
    """
    if not uri:
        return None
    path = PurePosixPath(uri)
    url = path.as_uri() if "://" not in uri and path.is_absolute() else uri
    return f"[{uri}]({url})"


def outcome_text(passed: bool, ok: str, problem: str, policy: OnFailure) -> str:
    """Say in one line what a check's verdict means for the steps after it.

    Args:
        passed: Whether the check found nothing wrong.
        ok: What passing looks like, e.g. ``"No dataset drift"``.
        problem: What failing looks like, e.g. ``"Dataset drift"``.
        policy: The task's ``on_failure``.
    """
    if passed:
        return f"{ok}: downstream steps go on."
    return {
        "fail": f"{problem}: the task fails (on_failure='fail').",
        "warn": f"{problem}: logged as a warning, downstream steps go on (on_failure='warn').",
        "skip": f"{problem}: downstream steps should skip (on_failure='skip').",
    }[policy]


def log_to_mlflow(
    log_function: str,
    result: Any,
    tracking_uri: str | None,
    experiment: str | None,
    task_name: str,
    what: str,
) -> str | None:
    """Log a check's result to MLflow when a tracking URI or experiment is given.

    Args:
        log_function: The :mod:`guardflow.tracking` function to call (imported only when used).
        result: The drift report or quality summary.
        tracking_uri: MLflow tracking URI.
        experiment: MLflow experiment name.
        task_name: The MLflow run name.
        what: What was logged, for the log line (e.g. ``"Drift report"``).

    Returns:
        The MLflow run id, or ``None`` when tracking is off.
    """
    if not (tracking_uri or experiment):
        return None
    from guardflow import tracking

    run_id: str = getattr(tracking, log_function)(
        result, tracking_uri=tracking_uri, experiment=experiment, run_name=task_name
    )
    get_run_logger().info("%s logged to MLflow run %s", what, run_id)
    return run_id
