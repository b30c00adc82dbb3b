"""Drift checks in Prefect flows: ``check_drift`` / ``acheck_drift`` tasks with a failure policy.

The tasks hand the work to :func:`guardflow.drift.check_drift` and add what Prefect users expect:
a markdown artifact summarising the run, a table artifact with one row per column (test, score,
threshold, verdict), guardflow's log lines in the run's logs, retries of retryable errors only,
and nothing persisted as a Prefect result. They return the :class:`~guardflow.drift.DriftReport`,
so a flow branches on it with plain Python::

    report = check_drift("reference.parquet", "today.parquet", on_failure="skip")
    if report.dataset_drift:
        alert(report.drifted_columns)  # the branch a drifted dataset takes
        return
    score(...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from prefect import get_run_logger, task

from guardflow import drift as core
from guardflow.drift import DriftConfig, DriftReport
from guardflow.errors import DriftDetectedError
from prefect_guardflow._checks import (
    TASK_OPTIONS,
    OnFailure,
    apply_policy,
    check_policy,
    log_to_mlflow,
    markdown_table,
    name_list,
    outcome_text,
    report_link,
    table_key,
)
from prefect_guardflow._runtime import run_identity, send_core_logs_to_prefect

__all__ = ["acheck_drift", "check_drift", "drift_message"]

Engine = Literal["native", "evidently"]


@task(name="check_drift", **TASK_OPTIONS)
def check_drift(
    reference: Any,
    current: Any,
    *,
    config: DriftConfig | Mapping[str, Any] | str | None = None,
    engine: Engine = "native",
    html_path: str | None = None,
    on_failure: OnFailure = "fail",
    mlflow_tracking_uri: str | None = None,
    mlflow_experiment: str | None = None,
    artifact_key: str | None = "guardflow-drift",
) -> DriftReport:
    """Check ``current`` for drift against ``reference``, column by column.

    Runs Evidently's default tests (natively, or with Evidently itself when
    ``engine="evidently"``) and calls the dataset drifted when the share of drifted columns
    reaches ``drift_share`` (0.5 by default; set it low in ``config`` to act on any drifted
    column). A markdown artifact (under ``artifact_key``) summarises the run and a table artifact
    (``<artifact_key>-columns``) lists every column's test, score, threshold and verdict. On drift:

    - ``on_failure="fail"`` (default): raises :class:`~guardflow.errors.DriftDetectedError`
      naming the drifted columns; the task run fails and is not retried;
    - ``"warn"``: logs a warning naming them and returns the report;
    - ``"skip"``: returns the report and logs that downstream steps should skip. Prefect has no
      skip state: the flow skips them by branching on ``report.dataset_drift``.

    Args:
        reference: The reference: records, a pandas or polars DataFrame, an Arrow table, a
            Parquet, CSV or JSONL path or URI, a :class:`~guardflow.drift.ReferenceProfile` or
            the path or URI of a saved one.
        current: The data to check, in any of the data forms above.
        config: A :class:`~guardflow.drift.DriftConfig`, its fields as a dict, or the path of a
            YAML file holding them (columns, per-column method and threshold, drift share).
        engine: ``"native"`` (default, fast) or ``"evidently"`` (runs Evidently itself).
        html_path: With ``engine="evidently"``, where to write Evidently's HTML report (linked
            from the summary artifact).
        on_failure: ``"fail"``, ``"warn"`` or ``"skip"``: what to do when the dataset drifted.
        mlflow_tracking_uri: Log scores, report and fingerprints to this MLflow tracking URI.
        mlflow_experiment: MLflow experiment to log to; setting it alone logs to the default
            tracking URI (``MLFLOW_TRACKING_URI``).
        artifact_key: Key of the summary artifact (lowercase letters, digits, dashes); the
            table artifact gets ``-columns`` appended. ``None`` creates unkeyed artifacts.

    Returns:
        The drift report: per-column results, ``dataset_drift``, ``drifted_columns``.

    Raises:
        DriftDetectedError: The dataset drifted and ``on_failure="fail"``.
        DriftInputError: An input is missing, empty or not comparable (whatever the policy).
        ConfigurationError: The config or an argument is invalid.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.drift import check_drift

        @flow
        def nightly() -> None:
            report = check_drift("ref.parquet", "today.parquet", on_failure="skip")
            if report.dataset_drift:
                return  # downstream steps skipped
            ...
        ```
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    policy, drift_config, identity = _prepare(config, on_failure, engine)
    report = core.check_drift(
        reference,
        current,
        config=drift_config,
        engine=engine,
        html_path=html_path,
        identity=identity,
    )
    run_id = _track(report, mlflow_tracking_uri, mlflow_experiment, identity.task_id)
    outcome = _outcome(report, policy)
    create_markdown_artifact(**_summary_artifact(report, artifact_key, outcome, run_id))
    create_table_artifact(**_columns_artifact(report, artifact_key))
    return _finish(report, policy)


@task(name="acheck_drift", **TASK_OPTIONS)
async def acheck_drift(
    reference: Any,
    current: Any,
    *,
    config: DriftConfig | Mapping[str, Any] | str | None = None,
    engine: Engine = "native",
    html_path: str | None = None,
    on_failure: OnFailure = "fail",
    mlflow_tracking_uri: str | None = None,
    mlflow_experiment: str | None = None,
    artifact_key: str | None = "guardflow-drift",
) -> DriftReport:
    """Async twin of :func:`check_drift`, for async flows: same arguments and behaviour.

    The statistics run in a worker thread, so the event loop stays free meanwhile.

    Args:
        reference: The reference: data, a data path or URI, or a (saved) reference profile.
        current: The data to check.
        config: A DriftConfig, its fields as a dict, or the path of a YAML file.
        engine: ``"native"`` or ``"evidently"``.
        html_path: With ``engine="evidently"``, where to write the HTML report.
        on_failure: ``"fail"``, ``"warn"`` or ``"skip"``.
        mlflow_tracking_uri: Log the report to this MLflow tracking URI.
        mlflow_experiment: MLflow experiment to log to.
        artifact_key: Key of the summary artifact; ``None`` creates unkeyed artifacts.

    Returns:
        The drift report.

    Raises:
        DriftDetectedError: The dataset drifted and ``on_failure="fail"``.
        DriftInputError: An input is missing, empty or not comparable.
        ConfigurationError: The config or an argument is invalid.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.drift import acheck_drift

        @flow
        async def nightly() -> None:
            report = await acheck_drift("ref.parquet", "today.parquet", on_failure="warn")
        ```
    """
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    policy, drift_config, identity = _prepare(config, on_failure, engine)
    report = await asyncio.to_thread(
        core.check_drift,
        reference,
        current,
        config=drift_config,
        engine=engine,
        html_path=html_path,
        identity=identity,
    )
    run_id = await asyncio.to_thread(
        _track, report, mlflow_tracking_uri, mlflow_experiment, identity.task_id
    )
    outcome = _outcome(report, policy)
    await acreate_markdown_artifact(**_summary_artifact(report, artifact_key, outcome, run_id))
    await acreate_table_artifact(**_columns_artifact(report, artifact_key))
    return _finish(report, policy)


def drift_message(report: DriftReport) -> str:
    """Describe a drifted dataset in one line: counts, share and the drifted columns' names.

    Args:
        report: The drift report.

    Returns:
        The message (column names, never values).
    """
    return (
        f"data drift detected: {report.drifted_count} of {report.column_count} columns drifted "
        f"(share {report.drifted_share:.2f}, drift at >= {report.drift_share:g}): "
        f"{name_list(report.drifted_columns)}"
    )


def _prepare(
    config: DriftConfig | Mapping[str, Any] | str | None, on_failure: str, engine: str
) -> tuple[OnFailure, DriftConfig | None, Any]:
    """What both tasks do first: validate arguments, route logs, log what is checked."""
    from pydantic import ValidationError

    from guardflow.errors import ConfigurationError

    policy = check_policy(on_failure)
    send_core_logs_to_prefect()
    if config is None or isinstance(config, DriftConfig):
        drift_config = config
    elif isinstance(config, str):
        drift_config = DriftConfig.from_yaml(config)
    else:
        try:
            drift_config = DriftConfig.model_validate(dict(config))
        except ValidationError as exc:
            raise ConfigurationError.from_validation(exc, what="drift config") from None
    identity = run_identity()
    get_run_logger().info(
        "Checking for drift (%s engine, on_failure=%r, attempt %d)",
        engine,
        policy,
        identity.attempt,
    )
    return policy, drift_config, identity


def _track(
    report: DriftReport, tracking_uri: str | None, experiment: str | None, task_name: str
) -> str | None:
    return log_to_mlflow(
        "log_drift_report", report, tracking_uri, experiment, task_name, "Drift report"
    )


def _outcome(report: DriftReport, policy: OnFailure) -> str:
    return outcome_text(not report.dataset_drift, "No dataset drift", "Dataset drift", policy)


def _finish(report: DriftReport, policy: OnFailure) -> DriftReport:
    """Log the report and apply the policy; return the report when the task succeeds."""
    get_run_logger().info("%s", report.to_text())
    if report.dataset_drift:
        apply_policy(policy, DriftDetectedError(drift_message(report), report=report))
    return report


def _summary_artifact(
    report: DriftReport, key: str | None, outcome: str, run_id: str | None
) -> dict[str, Any]:
    """Arguments of the summary markdown artifact (counts, scores, names: never data values)."""
    title = "Data drift detected" if report.dataset_drift else "No data drift"
    rows: list[tuple[str, Any]] = [
        ("Drifted columns", f"{report.drifted_count} of {report.column_count}"),
        ("Drifted share", f"{report.drifted_share:.3f} (drift at >= {report.drift_share:g})"),
        ("Columns that drifted", name_list(report.drifted_columns) or "none"),
        ("Engine", report.engine),
        ("Reference rows", report.reference_rows),
        ("Current rows", report.current_rows),
        ("Reference fingerprint", report.reference_fingerprint),
        ("Current fingerprint", report.current_fingerprint),
        ("HTML report", report_link(report.html_uri)),
        ("MLflow run", run_id),
    ]
    if report.skipped_columns:
        rows.append(("Skipped (one side only)", name_list(report.skipped_columns)))
    return {
        "markdown": markdown_table(title, rows, notes=[outcome]),
        "key": key,
        "description": "guardflow drift check summary",
    }


def _columns_artifact(report: DriftReport, key: str | None) -> dict[str, Any]:
    """Arguments of the per-column table artifact."""
    table = [
        {
            "column": c.column,
            "type": c.column_type,
            "method": c.method,
            "score": c.score,
            "threshold": c.threshold,
            "drifted": c.drifted,
            "reference_nulls": c.reference_nulls,
            "current_nulls": c.current_nulls,
        }
        for c in report.columns
    ]
    return {
        "table": table,
        "key": table_key(key),
        "description": "guardflow drift check: one row per column",
    }
