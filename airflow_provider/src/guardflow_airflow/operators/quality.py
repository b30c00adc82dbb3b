"""Data-quality checks as Airflow tasks: a Great Expectations suite run on a dataset by URI.

Both operators validate ``data_uri`` against an expectation suite through
:func:`guardflow.quality.validate_data` (an ephemeral GX context: nothing to set up) and put the
compact summary (counts, the failed expectations and their columns, never data values) in XCom
under ``quality_summary``. :class:`DataQualityOperator` applies its ``on_failure`` policy when the
suite failed; :class:`DataQualityBranchOperator` follows one set of downstream tasks or the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from guardflow_airflow._compat import BaseBranchOperator
from guardflow_airflow._runtime import guardflow_error_boundary, run_identity
from guardflow_airflow.operators._policy import OnFailure, apply_policy, check_policy, task_ids

if TYPE_CHECKING:
    from airflow.sdk import Context

    from guardflow.quality import QualitySummary

__all__ = ["SUMMARY_XCOM_KEY", "DataQualityBranchOperator", "DataQualityOperator"]

SUMMARY_XCOM_KEY = "quality_summary"


class _QualityCheck(BaseOperator):
    """What both quality operators hold and do: run the suite, summarise it, log it to MLflow."""

    template_fields: Sequence[str] = (
        "data_uri",
        "mlflow_tracking_uri",
        "mlflow_experiment",
        "audit_path",
    )
    ui_color = "#dcfce7"

    def __init__(
        self,
        *,
        data_uri: str,
        suite: str | Mapping[str, Any] | Any,
        mlflow_tracking_uri: str | None = None,
        mlflow_experiment: str | None = None,
        audit_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data_uri = data_uri
        self.suite = suite
        self.mlflow_tracking_uri = mlflow_tracking_uri
        self.mlflow_experiment = mlflow_experiment
        self.audit_path = audit_path

    def _validate(self, context: Context) -> tuple[QualitySummary, dict[str, Any]]:
        """Run the suite, push the summary to XCom and return it (object and JSON)."""
        from guardflow.audit import JsonlAuditSink
        from guardflow.quality import validate_data
        from guardflow.tables import safe_uri

        identity = run_identity(context)
        self.log.info("Validating %s", safe_uri(str(self.data_uri)))
        summary = validate_data(
            str(self.data_uri),
            self.suite,
            identity=identity,
            audit_sink=JsonlAuditSink(self.audit_path) if self.audit_path else None,
        )
        result = summary.to_dict()
        if self.mlflow_tracking_uri or self.mlflow_experiment:
            from guardflow.tracking import log_quality_summary

            result["mlflow_run_id"] = log_quality_summary(
                summary,
                tracking_uri=self.mlflow_tracking_uri or None,
                experiment=self.mlflow_experiment or None,
                run_name=f"{identity.pipeline}.{identity.task_id}",
            )
        self.log.info("%s", summary.to_text())
        context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=result)
        return summary, result


class DataQualityOperator(_QualityCheck):
    """Validate a dataset against an expectation suite; fail, warn or skip downstream on failure.

    The suite is a Great Expectations 1.x ``ExpectationSuite``, its dict form
    (``{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}``) or the path of a YAML
    or JSON file holding that dict, so one suite file serves Airflow, Prefect and the CLI. The
    summary always goes to XCom under ``quality_summary``; when the task succeeds it is also the
    task's return value. When an expectation fails:

    - ``on_failure="fail"`` (default): the task fails at once (no retries), naming the failed
      expectations and their columns;
    - ``"warn"``: a warning naming them is logged and the task succeeds;
    - ``"skip"``: the task is skipped, so downstream tasks with the default trigger rule skip too.

    Bad inputs (a missing file, an invalid suite) fail the task whatever the policy.

    Args:
        data_uri: The dataset (Parquet, CSV or JSONL path or URI). Templated.
        suite: The expectation suite (see above).
        on_failure: ``"fail"``, ``"warn"`` or ``"skip"``: what to do when the suite failed.
        mlflow_tracking_uri: Log the statistics to this MLflow tracking server (see
            :func:`guardflow.tracking.log_quality_summary`). Templated.
        mlflow_experiment: MLflow experiment to log to; setting it alone logs to the default
            tracking URI (``MLFLOW_TRACKING_URI``). Templated.
        audit_path: JSON Lines file for the audit event; default ``$GUARDFLOW_AUDIT_PATH``.
            Templated.
        **kwargs: Passed to :class:`airflow.sdk.BaseOperator` (``task_id``, ``retries``...).

    Examples:
        >>> check = DataQualityOperator(
        ...     task_id="check_quality",
        ...     data_uri="s3://bucket/{{ ds }}/orders.parquet",
        ...     suite="/opt/airflow/suites/orders.yaml",
        ...     on_failure="warn",
        ... )  # doctest: +SKIP
    """

    def __init__(self, *, on_failure: OnFailure = "fail", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_failure = check_policy(on_failure)

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the suite and apply ``on_failure`` when it failed.

        Returns:
            The quality summary (``QualitySummary.to_dict()``).

        Raises:
            AirflowFailException: A failed suite with ``on_failure="fail"``, or a non-retryable
                error.
            AirflowSkipException: A failed suite with ``on_failure="skip"``.
            GuardflowError: A retryable error (retried per the task's ``retries``).
        """
        from guardflow.errors import DataQualityError

        with guardflow_error_boundary():
            summary, result = self._validate(context)
            try:
                summary.raise_for_failure()
            except DataQualityError as error:
                apply_policy(self.on_failure, error, log=self.log)
            return result


class DataQualityBranchOperator(_QualityCheck, BaseBranchOperator):
    """Validate a dataset and follow one set of downstream tasks or the other.

    Same check and arguments as :class:`DataQualityOperator`, without a failure policy: a
    failed suite is a branch (quarantine the data, open a ticket...), not a failure. The tasks of
    the branch not taken are skipped; the summary goes to XCom under ``quality_summary``.

    Args:
        follow_task_ids_if_passed: Task or task group id(s) to run when every expectation passed.
        follow_task_ids_if_failed: Task or task group id(s) to run when one failed.
        **kwargs: The arguments of :class:`DataQualityOperator` but ``on_failure``, and those of
            :class:`airflow.sdk.BaseOperator`.

    Examples:
        >>> check = DataQualityBranchOperator(
        ...     task_id="check_quality",
        ...     data_uri="s3://bucket/{{ ds }}/orders.parquet",
        ...     suite="/opt/airflow/suites/orders.yaml",
        ...     follow_task_ids_if_passed="load",
        ...     follow_task_ids_if_failed="quarantine",
        ... )  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        follow_task_ids_if_passed: str | Iterable[str],
        follow_task_ids_if_failed: str | Iterable[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_passed = task_ids(follow_task_ids_if_passed)
        self.follow_task_ids_if_failed = task_ids(follow_task_ids_if_failed)

    def choose_branch(self, context: Context) -> list[str]:
        """Run the suite and return the task ids to follow.

        Returns:
            ``follow_task_ids_if_passed`` when every expectation passed, else
            ``follow_task_ids_if_failed``.

        Raises:
            AirflowFailException: A non-retryable error (bad input or suite).
            GuardflowError: A retryable error (retried per the task's ``retries``).
        """
        with guardflow_error_boundary():
            summary, _ = self._validate(context)
        if summary.success:
            return self.follow_task_ids_if_passed
        self.log.warning("%s: following %s", summary.headline(), self.follow_task_ids_if_failed)
        return self.follow_task_ids_if_failed
