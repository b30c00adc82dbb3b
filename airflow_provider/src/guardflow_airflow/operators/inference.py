"""InferenceOperator: score a dataset on a model server as one retry-safe Airflow task.

The operator resolves its ``guardflow_inference`` connection, derives the run identity from the
task context and calls :func:`guardflow.inference.run_inference`. Data moves by reference: the
task reads ``input_uri``, writes predictions to ``output_uri`` and returns only a small JSON
summary to XCom. A retried try of the same task instance has the same step key, so batches that
an earlier try completed are not sent again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from guardflow_airflow._runtime import guardflow_error_boundary, run_identity
from guardflow_airflow.hooks.inference import InferenceHook

if TYPE_CHECKING:
    from airflow.sdk import Context

    from guardflow.inference.config import RetryPolicy

__all__ = ["SUMMARY_XCOM_KEY", "InferenceOperator"]

SUMMARY_XCOM_KEY = "inference_summary"


class InferenceOperator(BaseOperator):
    """Score a Parquet, CSV or JSONL dataset on a model server; return a summary to XCom.

    Rows are batched, sent with bounded concurrency, retried per the retry policy and written
    atomically to ``output_uri`` with a ``prediction`` column. Rows that still fail go to the
    dead-letter output; the step fails when their share exceeds ``max_failed_fraction``.
    Progress (rows done/total, rows/s) goes to the task log at every tenth of the rows, through
    the ``guardflow.inference`` logger, and the step leaves one audit event.

    Errors guardflow marks retryable (the server not ready at the probe, an output that could
    not be written) are re-raised so the task's ``retries`` apply. The others (a bad connection
    or input, more failed rows than the policy allows) raise ``AirflowFailException``: the task
    fails at once instead of repeating what cannot succeed. When rows failed, both outputs are
    written and the summary still goes to XCom under ``inference_summary``. Either way a later
    try of the same task instance (a retry, or a cleared task) resumes: batches an earlier try
    finished are not sent again.

    Args:
        input_uri: Input dataset path or URI (``.parquet``, ``.csv``, ``.jsonl``). Templated.
        output_uri: Where predictions go (``.parquet`` or ``.jsonl``). Templated.
        guardflow_conn_id: The ``guardflow_inference`` connection naming the model server.
        token: Bearer token overriding the connection's password: a literal or, better, a
            ``vault://MOUNT/PATH#KEY`` reference (``vault:///PATH#KEY``: the Vault connection's
            mount). Resolved in ``execute`` only; never templated, and the value never reaches
            XCom, rendered fields or logs.
        vault_conn_id: The Vault connection (hashicorp's ``vault`` format or
            ``guardflow_vault``) resolving ``vault://`` references in ``token`` or in the
            inference connection's password.
        dead_letter_uri: Where failed rows go; default beside the output. Templated.
        checkpoint_dir: Folder under which finished batches are checkpointed for resume, in a
            subfolder per step key (run, task, map index, input); default beside the output.
            Templated.
        key_column: Column identifying each row; default is the row position.
        input_columns: Columns sent to the model; default all but ``key_column``.
        prediction_column: Name of the prediction column in the output.
        batch_size: Rows per request; overrides the connection's value.
        concurrency: Requests in flight; overrides the connection's value.
        requests_per_second: Request rate cap; overrides the connection's value.
        max_failed_fraction: Largest share of rows allowed in the dead-letter output.
        request_retry: How each request is retried
            (:class:`guardflow.inference.config.RetryPolicy` or its fields as a dict). Distinct
            from Airflow's task-level ``retries`` and ``retry_policy``.
        endpoint_options: Endpoint fields that override the connection (``prompt_column``,
            ``system_prompt``, ``openai_params``, ``headers``...).
        probe: Check the server's readiness before the first batch.
        audit_path: JSON Lines file for the audit event; default ``$GUARDFLOW_AUDIT_PATH`` or
            ``~/.guardflow/audit.jsonl``. Templated.
        **kwargs: Passed to :class:`airflow.sdk.BaseOperator` (``task_id``, ``retries``...).

    Examples:
        >>> score = InferenceOperator(
        ...     task_id="score",
        ...     input_uri="s3://bucket/{{ ds }}/features.parquet",
        ...     output_uri="s3://bucket/{{ ds }}/scores.parquet",
        ...     key_column="customer_id",
        ... )  # doctest: +SKIP
    """

    template_fields: Sequence[str] = (
        "input_uri",
        "output_uri",
        "dead_letter_uri",
        "checkpoint_dir",
        "audit_path",
    )
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        input_uri: str,
        output_uri: str,
        guardflow_conn_id: str = InferenceHook.default_conn_name,
        token: str | None = None,
        vault_conn_id: str = "vault_default",
        dead_letter_uri: str | None = None,
        checkpoint_dir: str | None = None,
        key_column: str | None = None,
        input_columns: Sequence[str] | None = None,
        prediction_column: str = "prediction",
        batch_size: int | None = None,
        concurrency: int | None = None,
        requests_per_second: float | None = None,
        max_failed_fraction: float = 0.0,
        request_retry: RetryPolicy | Mapping[str, Any] | None = None,
        endpoint_options: Mapping[str, Any] | None = None,
        probe: bool = True,
        audit_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_uri = input_uri
        self.output_uri = output_uri
        self.guardflow_conn_id = guardflow_conn_id
        # Deliberately not a template field: rendered fields are stored and shown in the UI.
        self.token = token
        self.vault_conn_id = vault_conn_id
        self.dead_letter_uri = dead_letter_uri
        self.checkpoint_dir = checkpoint_dir
        self.key_column = key_column
        self.input_columns = list(input_columns) if input_columns is not None else None
        self.prediction_column = prediction_column
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.requests_per_second = requests_per_second
        self.max_failed_fraction = max_failed_fraction
        self.request_retry = request_retry
        self.endpoint_options = dict(endpoint_options or {})
        self.probe = probe
        self.audit_path = audit_path

    def execute(self, context: Context) -> dict[str, Any]:
        """Score ``input_uri`` into ``output_uri``.

        Returns:
            The step summary (``InferenceSummary.to_dict()``): counts, URIs, model name and
            version, step key, batches resumed. Never data values.

        Raises:
            AirflowFailException: A non-retryable guardflow error (not retried by Airflow).
            GuardflowError: A retryable guardflow error (retried per the task's ``retries``).
        """
        from guardflow.errors import InferenceFailedRowsError

        with guardflow_error_boundary():
            try:
                return self._score(context)
            except InferenceFailedRowsError as exc:
                context["ti"].xcom_push(key=SUMMARY_XCOM_KEY, value=exc.summary)
                raise

    def _score(self, context: Context) -> dict[str, Any]:
        from guardflow.audit import JsonlAuditSink
        from guardflow.inference import run_inference

        identity = run_identity(context)
        hook = InferenceHook(
            guardflow_conn_id=self.guardflow_conn_id, vault_conn_id=self.vault_conn_id
        )
        endpoint_options = dict(self.endpoint_options)
        if self.token:
            from pydantic import SecretStr

            from guardflow_airflow._secrets import resolve_credential

            token = resolve_credential(self.token, vault_conn_id=self.vault_conn_id)
            endpoint_options["token"] = SecretStr(token) if token else None
        step: dict[str, Any] = {
            "key_column": self.key_column,
            "input_columns": self.input_columns,
            "prediction_column": self.prediction_column,
            "failure": {"max_failed_fraction": self.max_failed_fraction},
            "probe": self.probe,
        }
        if self.request_retry is not None:
            step["retry"] = self.request_retry
        config = hook.get_inference_config(
            endpoint_options=endpoint_options,
            batching_options={
                "batch_size": self.batch_size,
                "concurrency": self.concurrency,
                "requests_per_second": self.requests_per_second,
            },
            **step,
        )
        from guardflow.tables import safe_uri

        self.log.info(
            "Scoring %s on %s (%s protocol, batch size %d, concurrency %d), try %d",
            safe_uri(self.input_uri),
            safe_uri(config.endpoint.url),
            config.endpoint.protocol.value,
            config.batching.batch_size,
            config.batching.concurrency,
            identity.attempt,
        )
        summary = run_inference(
            str(self.input_uri),
            str(self.output_uri),
            config,
            identity=identity,
            dead_letter=str(self.dead_letter_uri) if self.dead_letter_uri else None,
            checkpoint_dir=str(self.checkpoint_dir) if self.checkpoint_dir else None,
            audit_sink=JsonlAuditSink(self.audit_path) if self.audit_path else None,
        )
        model = " ".join(filter(None, (summary.model_name, summary.model_version)))
        self.log.info(
            "Scored %d of %d rows (%d failed, %d of %d batches resumed)%s; predictions at %s",
            summary.succeeded,
            summary.rows,
            summary.failed,
            summary.batches_resumed,
            summary.batches,
            f" with model {model}" if model else "",
            summary.output_uri,
        )
        return summary.to_dict()
