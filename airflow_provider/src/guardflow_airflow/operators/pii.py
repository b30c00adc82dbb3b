"""PII masking and scanning as Airflow tasks.

:class:`PIIMaskOperator` masks a Parquet, CSV or JSONL file into another as a
:class:`guardflow.pii.PIIPolicy` says and puts the report (counts per column and entity type,
rows, bytes, never a value) in XCom. :class:`PIIScanOperator` only counts, and fails or warns
when a column holds PII its policy's ``allow`` does not name. Vault (for ``tokenize`` or a hash
key read from Vault) is reached through a ``vault`` / ``guardflow_vault`` connection, only when
the policy needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from guardflow_airflow._runtime import guardflow_error_boundary, run_identity
from guardflow_airflow.operators._policy import apply_policy

if TYPE_CHECKING:
    from airflow.sdk import Context

    from guardflow.pii import PIIPolicy

__all__ = ["REPORT_XCOM_KEY", "PIIMaskOperator", "PIIScanOperator", "load_policy"]

REPORT_XCOM_KEY = "pii_report"
OnFound = Literal["fail", "warn"]


def load_policy(policy: PIIPolicy | Mapping[str, Any] | str) -> PIIPolicy:
    """Return the policy from a :class:`~guardflow.pii.PIIPolicy`, its fields or a YAML path.

    A literal ``hash_key`` is registered with Airflow's secrets masker before anything runs.

    Args:
        policy: The policy, a dict of its fields or the path of a YAML file.

    Returns:
        The validated policy.

    Raises:
        PIIPolicyError: The policy is invalid (message names fields, never values).
    """
    from guardflow.pii import PIIPolicy
    from guardflow_airflow.hooks._vault_connection import mask

    loaded = PIIPolicy.load(policy if isinstance(policy, (PIIPolicy, str)) else dict(policy))
    if loaded.hash_key is not None:
        mask(loaded.hash_key.get_secret_value())
    return loaded


def _audit_sink(path: str | None) -> Any:
    from guardflow.audit import JsonlAuditSink

    return JsonlAuditSink(path) if path else None


class PIIMaskOperator(BaseOperator):
    """Mask PII in a file: input URI to output URI, the report to XCom.

    Columns the policy names as holding one entity type are transformed whole; free-text
    columns are scanned and each entity found is redacted, replaced with ``<TYPE>``, masked,
    hashed (HMAC-SHA256) or tokenized (Vault transit, reversible) as the policy says. The file is
    streamed (Parquet row groups, CSV/JSONL batches) and the output written atomically. The
    report (``PIIReport.to_dict()``: counts per column and type, rows scanned and touched, bytes,
    fingerprint; never a value) goes to XCom under ``pii_report`` and is the return value.

    Args:
        input_uri: Parquet, CSV or JSONL file or URI to mask. Templated.
        output_uri: Where to write the masked file (format from its extension). Templated.
        policy: A :class:`guardflow.pii.PIIPolicy`, its fields as a dict, or the path of a YAML
            file. Not templated: a literal hash key must never reach rendered fields.
        vault_conn_id: Vault connection, used only when the policy tokenizes or reads its hash
            key from Vault (``hash_key_ref``).
        audit_path: JSON Lines file for the audit event; default ``$GUARDFLOW_AUDIT_PATH``.
            Templated.
        workers: Processes that detect in free-text columns, the task's own included
            (default 1). Results are the same for any number; give a large file as many as
            the worker slot has cores.
        **kwargs: Passed to :class:`airflow.sdk.BaseOperator`.

    Examples:
        >>> mask = PIIMaskOperator(
        ...     task_id="mask_pii",
        ...     input_uri="s3://raw/{{ ds }}/tickets.parquet",
        ...     output_uri="s3://clean/{{ ds }}/tickets.parquet",
        ...     policy="/opt/airflow/policies/tickets.yaml",
        ... )  # doctest: +SKIP
    """

    template_fields: Sequence[str] = ("input_uri", "output_uri", "audit_path")
    ui_color = "#e0e7ff"

    def __init__(
        self,
        *,
        input_uri: str,
        output_uri: str,
        policy: PIIPolicy | Mapping[str, Any] | str,
        vault_conn_id: str = "vault_default",
        audit_path: str | None = None,
        workers: int = 1,
        **kwargs: Any,
    ) -> None:
        from guardflow.pii._parallel import check_workers

        super().__init__(**kwargs)
        self.workers = check_workers(workers)
        self.input_uri = input_uri
        self.output_uri = output_uri
        self.policy = policy
        self.vault_conn_id = vault_conn_id
        self.audit_path = audit_path

    def execute(self, context: Context) -> dict[str, Any]:
        """Mask the file and push the report.

        Returns:
            The report as a dict (counts only).

        Raises:
            AirflowFailException: Bad policy or input, or Vault refused (not retried).
            GuardflowError: A retryable error (Vault unreachable, a failed write).
        """
        from guardflow.pii import mask_file
        from guardflow.tables import safe_uri

        with guardflow_error_boundary():
            policy = load_policy(self.policy)
            self.log.info(
                "Masking PII in %s into %s",
                safe_uri(str(self.input_uri)),
                safe_uri(str(self.output_uri)),
            )
            hook = None
            if policy.needs_vault():
                from guardflow_airflow.hooks.vault import VaultHook

                hook = VaultHook(vault_conn_id=self.vault_conn_id)
            try:
                report = mask_file(
                    str(self.input_uri),
                    str(self.output_uri),
                    policy,
                    vault=hook.get_client() if hook is not None else None,
                    identity=run_identity(context),
                    audit_sink=_audit_sink(self.audit_path),
                    workers=self.workers,
                )
            finally:
                if hook is not None:
                    hook.close()
        summary = report.to_dict()
        self.log.info("%s", report.headline())
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=summary)
        return summary


class PIIScanOperator(BaseOperator):
    """Scan a file for PII; fail or warn when a column holds PII the policy does not allow.

    The policy's ``allow`` maps a column to the entity types it may hold (an ``email`` column
    may hold ``EMAIL_ADDRESS``); any other type found anywhere is a violation. The report goes
    to XCom under ``pii_report`` (its ``violations`` maps column to type to count). On a
    violation, ``on_found="fail"`` (default) fails the task at once (no retries) and ``"warn"``
    logs a warning and succeeds.

    Args:
        input_uri: Parquet, CSV or JSONL file or URI to scan. Templated.
        policy: A :class:`guardflow.pii.PIIPolicy`, its fields as a dict, or a YAML path.
        on_found: ``"fail"`` or ``"warn"``.
        audit_path: JSON Lines file for the audit event; default ``$GUARDFLOW_AUDIT_PATH``.
            Templated.
        workers: Processes that detect in free-text columns, the task's own included
            (default 1). Results are the same for any number; give a large file as many as
            the worker slot has cores.
        **kwargs: Passed to :class:`airflow.sdk.BaseOperator`.

    Examples:
        >>> scan = PIIScanOperator(
        ...     task_id="no_pii_leaves",
        ...     input_uri="s3://clean/{{ ds }}/tickets.parquet",
        ...     policy={"free_text_columns": ["body"]},
        ... )  # doctest: +SKIP
    """

    template_fields: Sequence[str] = ("input_uri", "audit_path")
    ui_color = "#e0e7ff"

    def __init__(
        self,
        *,
        input_uri: str,
        policy: PIIPolicy | Mapping[str, Any] | str,
        on_found: OnFound = "fail",
        audit_path: str | None = None,
        workers: int = 1,
        **kwargs: Any,
    ) -> None:
        from guardflow.pii._parallel import check_workers

        super().__init__(**kwargs)
        self.workers = check_workers(workers)
        if on_found not in ("fail", "warn"):
            raise ValueError(f"on_found must be 'fail' or 'warn', not {on_found!r}")
        self.input_uri = input_uri
        self.policy = policy
        self.on_found: OnFound = on_found
        self.audit_path = audit_path

    def execute(self, context: Context) -> dict[str, Any]:
        """Scan the file, push the report and apply ``on_found``.

        Returns:
            The report as a dict (counts and violations, never values).

        Raises:
            AirflowFailException: PII where not allowed with ``on_found="fail"``, or bad input.
        """
        from guardflow.cli.pii import violations
        from guardflow.errors import PIIFoundError
        from guardflow.pii import scan_file
        from guardflow.tables import safe_uri

        with guardflow_error_boundary():
            policy = load_policy(self.policy)
            self.log.info("Scanning %s for PII", safe_uri(str(self.input_uri)))
            report = scan_file(
                str(self.input_uri),
                policy,
                identity=run_identity(context),
                audit_sink=_audit_sink(self.audit_path),
                workers=self.workers,
            )
            summary = report.to_dict()
            self.log.info("%s", report.headline())
            context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=summary)
            if violations(report):
                try:
                    report.raise_for_violations()
                except PIIFoundError as found:
                    apply_policy(self.on_found, found, log=self.log)
        return summary
