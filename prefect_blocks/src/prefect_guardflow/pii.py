"""PII masking and scanning in Prefect flows: ``mask_pii`` / ``scan_pii`` and their async twins.

The tasks hand the work to :mod:`guardflow.pii` and add what Prefect users expect: a table
artifact with one row per column and entity type (counts, never values), guardflow's log lines
in the run's logs, retries of retryable errors only. They never persist results and never cache
on their inputs (``persist_result=False``, ``cache_policy=NONE``): raw data must not end up in
result storage or in a cache key. Vault (for ``tokenize`` or a hash key read from Vault) is
reached with a :class:`~prefect_guardflow.vault.VaultCredentials` block, or the ``VAULT_*``
variables, only when the policy needs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from prefect import get_run_logger, task

from guardflow.errors import ConfigurationError
from prefect_guardflow._checks import TASK_OPTIONS, table_key
from prefect_guardflow._redaction import register_secret
from prefect_guardflow._runtime import run_identity, send_core_logs_to_prefect
from prefect_guardflow._vault_credentials import VaultCredentials

if TYPE_CHECKING:
    from guardflow.pii import PIIPolicy, PIIReport
    from guardflow.secrets import VaultClient

__all__ = ["amask_pii", "ascan_pii", "counts_table", "mask_pii", "scan_pii"]

OnFound = Literal["fail", "warn"]
Policy = Any  # PIIPolicy | Mapping[str, Any] | str; the core type is imported lazily


@task(name="mask_pii", **TASK_OPTIONS)
def mask_pii(
    input_uri: str,
    output_uri: str,
    policy: Policy,
    *,
    vault_credentials: VaultCredentials | None = None,
    artifact_key: str | None = "guardflow-pii",
    workers: int = 1,
) -> PIIReport:
    """Mask PII in a Parquet, CSV or JSONL file into another, as ``policy`` says.

    Columns the policy names as holding one entity type are transformed whole; free-text columns
    are scanned and each entity found is redacted, replaced, masked, hashed or tokenized. The
    file is streamed in bounded memory and the output written atomically. A table artifact
    (``<artifact_key>-columns``) holds the counts per column and entity type.

    Args:
        input_uri: The file or URI to mask.
        output_uri: Where to write the masked file (format from its extension).
        policy: A :class:`~guardflow.pii.PIIPolicy`, its fields as a dict, or a YAML path.
        vault_credentials: How to reach Vault when the policy tokenizes or reads its hash key
            from Vault; ``None`` reads the ``VAULT_*`` variables then.
        artifact_key: Key prefix of the table artifact; ``None`` creates an unkeyed one.
        workers: Processes that detect in free-text columns, the task's own included
            (default 1). Results are the same for any number.

    Returns:
        The report: counts per column and type, rows scanned and touched; never a value.

    Raises:
        PIIPolicyError: The policy is invalid.
        InputDataError: The input is missing or unreadable.
        SecretsError: Vault refused or could not be reached (retried when retryable).

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow import mask_pii

        @flow
        def ingest() -> None:
            mask_pii("raw/tickets.parquet", "clean/tickets.parquet", "policies/tickets.yaml")
        ```
    """
    from prefect.artifacts import create_table_artifact

    report = _mask(input_uri, output_uri, _prepare(policy), vault_credentials, workers=workers)
    create_table_artifact(**_artifact(report, artifact_key, "masked"))
    return report


@task(name="amask_pii", **TASK_OPTIONS)
async def amask_pii(
    input_uri: str,
    output_uri: str,
    policy: Policy,
    *,
    vault_credentials: VaultCredentials | None = None,
    artifact_key: str | None = "guardflow-pii",
    workers: int = 1,
) -> PIIReport:
    """Async twin of :func:`mask_pii`: the masking runs in a worker thread.

    Args:
        input_uri: The file or URI to mask.
        output_uri: Where to write the masked file.
        policy: A PIIPolicy, its fields as a dict, or a YAML path.
        vault_credentials: How to reach Vault when the policy needs it.
        artifact_key: Key prefix of the table artifact.
        workers: Processes that detect in free-text columns, the task's own included
            (default 1). Results are the same for any number.

    Returns:
        The report.

    Raises:
        PIIPolicyError: The policy is invalid.
        InputDataError: The input is missing or unreadable.
        SecretsError: Vault refused or could not be reached.

    Examples:
        ```python
        report = await amask_pii("raw.parquet", "clean.parquet", {"free_text_columns": ["body"]})
        ```
    """
    from prefect.artifacts import acreate_table_artifact

    loaded = _prepare(policy)
    identity = run_identity()
    report = await asyncio.to_thread(
        _mask, input_uri, output_uri, loaded, vault_credentials, identity, workers
    )
    await acreate_table_artifact(**_artifact(report, artifact_key, "masked"))
    return report


@task(name="scan_pii", **TASK_OPTIONS)
def scan_pii(
    data: Any,
    policy: Policy,
    *,
    on_found: OnFound = "fail",
    artifact_key: str | None = "guardflow-pii-scan",
    workers: int = 1,
) -> PIIReport:
    """Count PII in data; fail or warn when a column holds PII the policy does not allow.

    The policy's ``allow`` maps a column to the entity types it may hold; any other type found
    is a violation. ``on_found="fail"`` raises :class:`~guardflow.errors.PIIFoundError` (not
    retried); ``"warn"`` logs a warning naming the columns and returns the report.

    Args:
        data: A Parquet, CSV or JSONL path or URI, or records, a pandas or polars DataFrame or
            an Arrow table.
        policy: A :class:`~guardflow.pii.PIIPolicy`, its fields as a dict, or a YAML path.
        on_found: ``"fail"`` or ``"warn"``.
        artifact_key: Key prefix of the table artifact; ``None`` creates an unkeyed one.
        workers: Processes that detect in free-text columns, the task's own included
            (default 1). Results are the same for any number.

    Returns:
        The report (counts only).

    Raises:
        PIIFoundError: PII where the policy does not allow it, with ``on_found="fail"``.
        PIIPolicyError: The policy is invalid.

    Examples:
        ```python
        scan_pii("clean/tickets.parquet", {"free_text_columns": ["body"]})
        ```
    """
    from prefect.artifacts import create_table_artifact

    found = _check_on_found(on_found)
    loaded = _prepare(policy)
    report = _scan(data, loaded, workers=workers)
    create_table_artifact(**_artifact(report, artifact_key, "scanned"))
    return _finish(report, found)


@task(name="ascan_pii", **TASK_OPTIONS)
async def ascan_pii(
    data: Any,
    policy: Policy,
    *,
    on_found: OnFound = "fail",
    artifact_key: str | None = "guardflow-pii-scan",
    workers: int = 1,
) -> PIIReport:
    """Async twin of :func:`scan_pii`: the scan runs in a worker thread.

    Args:
        data: A data path or URI, or data in memory.
        policy: A PIIPolicy, its fields as a dict, or a YAML path.
        on_found: ``"fail"`` or ``"warn"``.
        artifact_key: Key prefix of the table artifact.
        workers: Processes that detect in free-text columns, the task's own included
            (default 1). Results are the same for any number.

    Returns:
        The report.

    Raises:
        PIIFoundError: PII where the policy does not allow it, with ``on_found="fail"``.
        PIIPolicyError: The policy is invalid.

    Examples:
        ```python
        report = await ascan_pii("clean.parquet", "policy.yaml", on_found="warn")
        ```
    """
    from prefect.artifacts import acreate_table_artifact

    found = _check_on_found(on_found)
    loaded = _prepare(policy)
    identity = run_identity()
    report = await asyncio.to_thread(_scan, data, loaded, identity, workers)
    await acreate_table_artifact(**_artifact(report, artifact_key, "scanned"))
    return _finish(report, found)


def counts_table(report: PIIReport) -> list[dict[str, Any]]:
    """Return the report's counts as table rows: one per column and entity type.

    Args:
        report: The PII report.

    Returns:
        ``[{"column": ..., "entity_type": ..., "count": ...}, ...]``, sorted; never a value.
    """
    return [
        {"column": column, "entity_type": str(etype), "count": int(n)}
        for column, counts in sorted(report.counts.items())
        for etype, n in sorted(counts.items())
    ]


def _check_on_found(value: str) -> OnFound:
    if value not in ("fail", "warn"):
        raise ConfigurationError(f"on_found must be 'fail' or 'warn', not {value!r}")
    return value  # type: ignore[return-value]


def _prepare(policy: Policy) -> PIIPolicy:
    """Route logs, load the policy and mask a literal hash key in the run's logs."""
    from guardflow.pii import PIIPolicy

    send_core_logs_to_prefect()
    if isinstance(policy, Mapping):
        policy = dict(policy)
    elif not isinstance(policy, (PIIPolicy, str)):
        raise ConfigurationError("policy must be a PIIPolicy, a dict or the path of a YAML file")
    loaded = PIIPolicy.load(policy)
    register_secret(loaded.hash_key)
    return loaded


def _vault(policy: PIIPolicy, credentials: VaultCredentials | None) -> VaultClient | None:
    if not policy.needs_vault():
        return None
    creds = credentials if credentials is not None else VaultCredentials.from_env()
    return creds.get_client()


def _mask(
    input_uri: str,
    output_uri: str,
    policy: PIIPolicy,
    credentials: VaultCredentials | None,
    identity: Any = None,
    workers: int = 1,
) -> PIIReport:
    from guardflow.pii import mask_file
    from guardflow.tables import safe_uri

    identity = identity if identity is not None else run_identity()
    get_run_logger().info("Masking PII in %s into %s", safe_uri(input_uri), safe_uri(output_uri))
    vault = _vault(policy, credentials)
    try:
        report: PIIReport = mask_file(
            input_uri, output_uri, policy, vault=vault, identity=identity, workers=workers
        )
    finally:
        if vault is not None:
            vault.close()
    get_run_logger().info("%s", report.headline())
    return report


def _scan(data: Any, policy: PIIPolicy, identity: Any = None, workers: int = 1) -> PIIReport:
    from guardflow.pii import scan_file, scan_table

    identity = identity if identity is not None else run_identity()
    if isinstance(data, str):
        report: PIIReport = scan_file(data, policy, identity=identity, workers=workers)
    else:
        report = scan_table(data, policy, identity=identity, workers=workers)
    get_run_logger().info("%s", report.headline())
    return report


def _finish(report: PIIReport, on_found: OnFound) -> PIIReport:
    from guardflow.cli.pii import violations
    from guardflow.errors import PIIFoundError

    if violations(report):
        try:
            report.raise_for_violations()
        except PIIFoundError as found:
            if on_found == "fail":
                raise
            get_run_logger().warning("%s (on_found='warn': the flow goes on)", found)
    return report


def _artifact(report: PIIReport, key: str | None, verb: str) -> dict[str, Any]:
    return {
        "table": counts_table(report),
        "key": table_key(key),
        "description": f"guardflow PII: entities {verb}, per column and type (counts only)",
    }
