"""Data-quality checks in Prefect flows: ``validate_data`` / ``avalidate_data`` tasks.

The tasks run a Great Expectations 1.x suite through :func:`guardflow.quality.validate_data` (an
ephemeral GX context: nothing to set up, nothing written) and add what Prefect users expect: a
markdown artifact summarising the run, a table artifact with one row per failed expectation
(type, columns, unexpected count and share), retries of retryable errors only, and nothing
persisted as a Prefect result. They return the :class:`~guardflow.quality.QualitySummary`, so a
flow branches on it with plain Python::

    summary = validate_data("today.parquet", "suites/orders.yaml", on_failure="skip")
    if not summary.success:
        quarantine(summary.failed_columns)
        return
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from prefect import get_run_logger, task

from guardflow import quality as core
from guardflow.errors import DataQualityError
from guardflow.quality import QualitySummary
from prefect_guardflow._checks import (
    TASK_OPTIONS,
    OnFailure,
    apply_policy,
    check_policy,
    log_to_mlflow,
    markdown_table,
    name_list,
    outcome_text,
    table_key,
)
from prefect_guardflow._runtime import run_identity, send_core_logs_to_prefect

__all__ = ["avalidate_data", "validate_data"]


@task(name="validate_data", **TASK_OPTIONS)
def validate_data(
    data: Any,
    suite: str | Mapping[str, Any] | Any,
    *,
    on_failure: OnFailure = "fail",
    mlflow_tracking_uri: str | None = None,
    mlflow_experiment: str | None = None,
    artifact_key: str | None = "guardflow-quality",
) -> QualitySummary:
    """Validate ``data`` against an expectation suite.

    The suite is a Great Expectations 1.x ``ExpectationSuite``, its dict form
    (``{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}``) or the path of a YAML
    or JSON file holding that dict, so one suite file serves Prefect, Airflow and the CLI. A
    markdown artifact (under ``artifact_key``) summarises the run and a table artifact
    (``<artifact_key>-columns``) lists the failed expectations with their columns. When an
    expectation fails:

    - ``on_failure="fail"`` (default): raises :class:`~guardflow.errors.DataQualityError`
      naming the failed expectations and columns; the task run fails and is not retried;
    - ``"warn"``: logs a warning naming them and returns the summary;
    - ``"skip"``: returns the summary and logs that downstream steps should skip. Prefect has
      no skip state: the flow skips them by branching on ``summary.success``.

    Args:
        data: Records, a pandas or polars DataFrame, an Arrow table, or a Parquet, CSV or JSONL
            path or URI.
        suite: The expectation suite (see above).
        on_failure: ``"fail"``, ``"warn"`` or ``"skip"``: what to do when the suite failed.
        mlflow_tracking_uri: Log the statistics to this MLflow tracking URI.
        mlflow_experiment: MLflow experiment to log to; setting it alone logs to the default
            tracking URI (``MLFLOW_TRACKING_URI``).
        artifact_key: Key of the summary artifact (lowercase letters, digits, dashes); the
            table artifact gets ``-columns`` appended. ``None`` creates unkeyed artifacts.

    Returns:
        The summary: ``success``, counts, failed expectations (never data values).

    Raises:
        DataQualityError: An expectation failed and ``on_failure="fail"``.
        InputDataError: The data is missing, unreadable or empty (whatever the policy).
        ConfigurationError: The suite or an argument is invalid.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.quality import validate_data

        @flow
        def nightly() -> None:
            summary = validate_data("today.parquet", "suites/orders.yaml", on_failure="warn")
        ```
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    policy, identity = _prepare(on_failure)
    summary = core.validate_data(data, suite, identity=identity)
    run_id = _track(summary, mlflow_tracking_uri, mlflow_experiment, identity.task_id)
    create_markdown_artifact(**_summary_artifact(summary, artifact_key, policy, run_id))
    create_table_artifact(**_failed_artifact(summary, artifact_key))
    return _finish(summary, policy)


@task(name="avalidate_data", **TASK_OPTIONS)
async def avalidate_data(
    data: Any,
    suite: str | Mapping[str, Any] | Any,
    *,
    on_failure: OnFailure = "fail",
    mlflow_tracking_uri: str | None = None,
    mlflow_experiment: str | None = None,
    artifact_key: str | None = "guardflow-quality",
) -> QualitySummary:
    """Async twin of :func:`validate_data`, for async flows: same arguments and behaviour.

    The suite runs in a worker thread, so the event loop stays free meanwhile.

    Args:
        data: Records, a DataFrame, an Arrow table, or a Parquet, CSV or JSONL path or URI.
        suite: A GX ExpectationSuite, its dict form, or a YAML/JSON suite file.
        on_failure: ``"fail"``, ``"warn"`` or ``"skip"``.
        mlflow_tracking_uri: Log the statistics to this MLflow tracking URI.
        mlflow_experiment: MLflow experiment to log to.
        artifact_key: Key of the summary artifact; ``None`` creates unkeyed artifacts.

    Returns:
        The quality summary.

    Raises:
        DataQualityError: An expectation failed and ``on_failure="fail"``.
        InputDataError: The data is missing, unreadable or empty.
        ConfigurationError: The suite or an argument is invalid.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.quality import avalidate_data

        @flow
        async def nightly() -> None:
            summary = await avalidate_data("today.parquet", "suites/orders.yaml")
        ```
    """
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    policy, identity = _prepare(on_failure)
    summary = await asyncio.to_thread(core.validate_data, data, suite, identity=identity)
    run_id = await asyncio.to_thread(
        _track, summary, mlflow_tracking_uri, mlflow_experiment, identity.task_id
    )
    await acreate_markdown_artifact(**_summary_artifact(summary, artifact_key, policy, run_id))
    await acreate_table_artifact(**_failed_artifact(summary, artifact_key))
    return _finish(summary, policy)


def _prepare(on_failure: str) -> tuple[OnFailure, Any]:
    policy = check_policy(on_failure)
    send_core_logs_to_prefect()
    identity = run_identity()
    get_run_logger().info("Validating data (on_failure=%r, attempt %d)", policy, identity.attempt)
    return policy, identity


def _track(
    summary: QualitySummary, tracking_uri: str | None, experiment: str | None, task_name: str
) -> str | None:
    return log_to_mlflow(
        "log_quality_summary", summary, tracking_uri, experiment, task_name, "Quality summary"
    )


def _finish(summary: QualitySummary, policy: OnFailure) -> QualitySummary:
    """Log the summary and apply the policy; return the summary when the task succeeds."""
    get_run_logger().info("%s", summary.to_text())
    try:
        summary.raise_for_failure()
    except DataQualityError as error:
        apply_policy(policy, error)
    return summary


def _outcome(summary: QualitySummary, policy: OnFailure) -> str:
    return outcome_text(summary.success, "Every expectation passed", "Suite failed", policy)


def _summary_artifact(
    summary: QualitySummary, key: str | None, policy: OnFailure, run_id: str | None
) -> dict[str, Any]:
    """Arguments of the summary markdown artifact (counts and names: never data values)."""
    title = f"Data quality: suite {summary.suite_name!r} " + (
        "passed" if summary.success else "failed"
    )
    rows: list[tuple[str, Any]] = [
        ("Expectations passed", f"{summary.successful} of {summary.evaluated}"),
        ("Success", f"{summary.success_percent:.1f}%"),
        ("Failed expectations", summary.unsuccessful),
        ("Columns with failures", name_list(summary.failed_columns) or "none"),
        ("Rows", summary.rows),
        ("Data fingerprint", summary.data_fingerprint),
        ("MLflow run", run_id),
    ]
    return {
        "markdown": markdown_table(title, rows, notes=[_outcome(summary, policy)]),
        "key": key,
        "description": "guardflow data quality summary",
    }


def _failed_artifact(summary: QualitySummary, key: str | None) -> dict[str, Any]:
    """Arguments of the table artifact: one row per failed expectation."""
    table = [
        {
            "expectation": f.type,
            "columns": ", ".join(f.columns),
            "unexpected_count": f.unexpected_count,
            "unexpected_percent": f.unexpected_percent,
            "observed_value": f.observed_value,
            "severity": f.severity,
            "error": f.error,
        }
        for f in summary.failed
    ]
    return {
        "table": table,
        "key": table_key(key),
        "description": "guardflow data quality: one row per failed expectation",
    }
