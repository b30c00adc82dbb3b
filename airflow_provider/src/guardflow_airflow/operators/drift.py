"""Drift checks as Airflow tasks: fail, warn or skip on drift, or branch on the verdict.

Both operators compare ``current_uri`` with a reference (a dataset URI or a saved reference
profile) through :func:`guardflow.drift.check_drift` and put a small JSON summary of the report
(per-column method, score, threshold and verdict; counts and fingerprints; never data values) in
XCom under ``drift_summary``. :class:`DriftCheckOperator` applies its ``on_failure`` policy when the
dataset drifted; :class:`DriftCheckBranchOperator` follows one set of downstream tasks or the other.
When an HTML report is written (``html_uri``), the task shows a "Drift report" extra link to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from guardflow_airflow._compat import BaseBranchOperator
from guardflow_airflow._runtime import guardflow_error_boundary, run_identity
from guardflow_airflow.links import DriftReportLink
from guardflow_airflow.operators._policy import (
    OnFailure,
    apply_policy,
    check_policy,
    name_list,
    task_ids,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from guardflow.drift import DriftConfig, DriftReport

__all__ = ["SUMMARY_XCOM_KEY", "DriftCheckBranchOperator", "DriftCheckOperator"]

SUMMARY_XCOM_KEY = "drift_summary"


class _DriftCheck(BaseOperator):
    """What both drift operators hold and do: run the check, summarise it, log it to MLflow."""

    template_fields: Sequence[str] = (
        "reference_uri",
        "current_uri",
        "html_uri",
        "mlflow_tracking_uri",
        "mlflow_experiment",
        "audit_path",
    )
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#fef3c7"

    def __init__(
        self,
        *,
        reference_uri: str,
        current_uri: str,
        config: DriftConfig | Mapping[str, Any] | str | None = None,
        engine: Literal["native", "evidently"] = "native",
        html_uri: str | None = None,
        mlflow_tracking_uri: str | None = None,
        mlflow_experiment: str | None = None,
        audit_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if engine not in ("native", "evidently"):
            raise ValueError(f"engine must be 'native' or 'evidently', not {engine!r}")
        self.reference_uri = reference_uri
        self.current_uri = current_uri
        self.config = config
        self.engine = engine
        self.html_uri = html_uri
        self.mlflow_tracking_uri = mlflow_tracking_uri
        self.mlflow_experiment = mlflow_experiment
        self.audit_path = audit_path

    def _drift_config(self) -> DriftConfig | None:
        from pydantic import ValidationError

        from guardflow.drift import DriftConfig
        from guardflow.errors import ConfigurationError

        if self.config is None or isinstance(self.config, DriftConfig):
            return self.config
        if isinstance(self.config, str):
            return DriftConfig.from_yaml(self.config)
        try:
            return DriftConfig.model_validate(dict(self.config))
        except ValidationError as exc:
            raise ConfigurationError.from_validation(exc, what="drift config") from None

    def _check(self, context: Context) -> tuple[DriftReport, dict[str, Any]]:
        """Run the check, push the summary to XCom and return the report with it."""
        from guardflow.audit import JsonlAuditSink
        from guardflow.drift import check_drift
        from guardflow.tables import safe_uri

        identity = run_identity(context)
        self.log.info(
            "Checking %s for drift against %s (%s engine)",
            safe_uri(str(self.current_uri)),
            safe_uri(str(self.reference_uri)),
            self.engine,
        )
        report = check_drift(
            str(self.reference_uri),
            str(self.current_uri),
            config=self._drift_config(),
            engine=self.engine,
            html_path=str(self.html_uri) if self.html_uri else None,
            identity=identity,
            audit_sink=JsonlAuditSink(self.audit_path) if self.audit_path else None,
        )
        summary = drift_summary(report)
        if self.mlflow_tracking_uri or self.mlflow_experiment:
            from guardflow.tracking import log_drift_report

            summary["mlflow_run_id"] = log_drift_report(
                report,
                tracking_uri=self.mlflow_tracking_uri or None,
                experiment=self.mlflow_experiment or None,
                run_name=f"{identity.pipeline}.{identity.task_id}",
            )
        self.log.info("%s", report.to_text())
        context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
        return report, summary


def drift_summary(report: DriftReport) -> dict[str, Any]:
    """Return what goes to XCom: the report as JSON plus the names of the drifted columns.

    Args:
        report: The drift report.

    Returns:
        ``report.to_dict()`` (per-column method, score, threshold, verdict, null counts; counts,
        shares, fingerprints, ``html_uri``) with ``drifted_columns`` added. Never data values.
    """
    return {**report.to_dict(), "drifted_columns": report.drifted_columns}


def drift_message(report: DriftReport) -> str:
    """Describe a drifted dataset in one line: counts, share and the drifted columns' names."""
    return (
        f"data drift detected: {report.drifted_count} of {report.column_count} columns drifted "
        f"(share {report.drifted_share:.2f}, drift at >= {report.drift_share:g}): "
        f"{name_list(report.drifted_columns)}"
    )


class DriftCheckOperator(_DriftCheck):
    """Check a dataset for drift against a reference; fail, warn or skip downstream on drift.

    The check runs Evidently's default tests (natively, or with Evidently itself when
    ``engine="evidently"``) per column and calls the dataset drifted when the share of drifted
    columns reaches ``drift_share`` (0.5 by default; set it low in ``config`` to act on any
    drifted column). The summary always goes to XCom under ``drift_summary``; when the task
    succeeds it is also the task's return value. On drift:

    - ``on_failure="fail"`` (default): the task fails at once (no retries), naming the drifted
      columns;
    - ``"warn"``: a warning naming them is logged and the task succeeds;
    - ``"skip"``: the task is skipped, so downstream tasks with the default trigger rule skip too.

    Bad inputs (missing files, no common columns, empty data) fail the task whatever the policy.

    Args:
        reference_uri: The reference: a Parquet, CSV or JSONL path or URI, or a saved reference
            profile (see :func:`guardflow.drift.build_profile`). Templated.
        current_uri: The data to check (Parquet, CSV or JSONL path or URI). Templated.
        config: A :class:`guardflow.drift.DriftConfig`, its fields as a dict, or the path of a
            YAML file holding them (columns, per-column method and threshold, drift share).
        engine: ``"native"`` (default, fast) or ``"evidently"`` (runs Evidently itself).
        html_uri: With ``engine="evidently"``, where to write Evidently's HTML report; the
            task's "Drift report" link points at it. Templated.
        on_failure: ``"fail"``, ``"warn"`` or ``"skip"``: what to do when the dataset drifted.
        mlflow_tracking_uri: Log scores, report and fingerprints to this MLflow tracking server
            (see :func:`guardflow.tracking.log_drift_report`). Templated.
        mlflow_experiment: MLflow experiment to log to; setting it alone logs to the default
            tracking URI (``MLFLOW_TRACKING_URI``). Templated.
        audit_path: JSON Lines file for the audit event; default ``$GUARDFLOW_AUDIT_PATH``.
            Templated.
        **kwargs: Passed to :class:`airflow.sdk.BaseOperator` (``task_id``, ``retries``...).

    Examples:
        >>> check = DriftCheckOperator(
        ...     task_id="check_drift",
        ...     reference_uri="s3://bucket/reference.parquet",
        ...     current_uri="s3://bucket/{{ ds }}/features.parquet",
        ...     config={"columns": ["age", "income"], "drift_share": 0.3},
        ...     on_failure="skip",
        ... )  # doctest: +SKIP
    """

    def __init__(self, *, on_failure: OnFailure = "fail", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_failure = check_policy(on_failure)

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the drift check and apply ``on_failure`` when the dataset drifted.

        Returns:
            The drift summary (see :func:`drift_summary`).

        Raises:
            AirflowFailException: Drift with ``on_failure="fail"``, or a non-retryable error.
            AirflowSkipException: Drift with ``on_failure="skip"``.
            GuardflowError: A retryable error (retried per the task's ``retries``).
        """
        from guardflow.errors import DriftDetectedError

        with guardflow_error_boundary():
            report, summary = self._check(context)
            if report.dataset_drift:
                error = DriftDetectedError(drift_message(report), report=report)
                apply_policy(self.on_failure, error, log=self.log)
            return summary


class DriftCheckBranchOperator(_DriftCheck, BaseBranchOperator):
    """Check a dataset for drift and follow one set of downstream tasks or the other.

    Same check and arguments as :class:`DriftCheckOperator`, without a failure policy: drift
    is a branch, not a failure. The tasks of the branch not taken are skipped; the summary goes
    to XCom under ``drift_summary``.

    Args:
        follow_task_ids_if_drift: Task or task group id(s) to run when the dataset drifted.
        follow_task_ids_if_no_drift: Task or task group id(s) to run when it did not.
        **kwargs: The arguments of :class:`DriftCheckOperator` but ``on_failure``, and those of
            :class:`airflow.sdk.BaseOperator`.

    Examples:
        >>> check = DriftCheckBranchOperator(
        ...     task_id="check_drift",
        ...     reference_uri="s3://bucket/reference.parquet",
        ...     current_uri="s3://bucket/{{ ds }}/features.parquet",
        ...     follow_task_ids_if_drift="alert_drift",
        ...     follow_task_ids_if_no_drift="score",
        ... )  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        follow_task_ids_if_drift: str | Iterable[str],
        follow_task_ids_if_no_drift: str | Iterable[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_drift = task_ids(follow_task_ids_if_drift)
        self.follow_task_ids_if_no_drift = task_ids(follow_task_ids_if_no_drift)

    def choose_branch(self, context: Context) -> list[str]:
        """Run the drift check and return the task ids to follow.

        Returns:
            ``follow_task_ids_if_drift`` when the dataset drifted, else
            ``follow_task_ids_if_no_drift``.

        Raises:
            AirflowFailException: A non-retryable error (bad input or config).
            GuardflowError: A retryable error (retried per the task's ``retries``).
        """
        with guardflow_error_boundary():
            report, _ = self._check(context)
        if report.dataset_drift:
            self.log.warning(
                "%s: following %s", drift_message(report), self.follow_task_ids_if_drift
            )
            return self.follow_task_ids_if_drift
        return self.follow_task_ids_if_no_drift
