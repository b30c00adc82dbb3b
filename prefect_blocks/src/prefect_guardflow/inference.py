"""Model-server inference in Prefect flows: an endpoint block and ``run_inference`` tasks.

The block maps onto guardflow's :class:`~guardflow.inference.InferenceConfig`; the tasks hand
the work to :func:`guardflow.inference.run_inference` and add what Prefect users expect: retries
of retryable failures only (a retry resumes from the step's checkpoint), a progress artifact, a
summary artifact, and a small JSON summary as the task's return value. Nothing the tasks handle is
persisted as a Prefect result.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.blocks.core import Block
from prefect.cache_policies import NONE
from prefect.types import SecretDict
from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator

from guardflow import inference as core
from guardflow.errors import ConfigurationError, InferenceFailedRowsError
from guardflow.identity import RunIdentity
from guardflow.inference.config import (
    BatchPolicy,
    EndpointConfig,
    FailurePolicy,
    InferenceConfig,
    Protocol,
    RetryPolicy,
    Timeouts,
)
from prefect_guardflow._links import DOCUMENTATION_URL, LOGO_URL
from prefect_guardflow._redaction import register_secret
from prefect_guardflow._runtime import (
    AsyncProgressReporter,
    ProgressReporter,
    retry_on_retryable_error,
    run_identity,
    send_core_logs_to_prefect,
)
from prefect_guardflow.vault import VaultCredentials, resolve_credential

if TYPE_CHECKING:
    from guardflow.secrets import SecretValue

__all__ = ["InferenceEndpoint", "arun_inference", "run_inference"]

_BATCHING = BatchPolicy()
_TIMEOUTS = Timeouts()
_RETRY = RetryPolicy()
_ENDPOINT_DEFAULTS = EndpointConfig(url="http://defaults.invalid")


class InferenceEndpoint(Block):
    """A model server that guardflow's inference tasks send rows to.

    Covers MLflow scoring servers, Open Inference Protocol v2 servers (KServe, Triton, MLServer,
    Seldon), BentoML, OpenAI-compatible servers and plain JSON APIs. The bearer token and any
    extra headers are stored encrypted and never appear in logs, results or artifacts.

    Examples:
        Load a saved endpoint and score a file with it:
        ```python
        from prefect import flow
        from prefect_guardflow.inference import InferenceEndpoint, run_inference

        @flow
        def score() -> dict:
            endpoint = InferenceEndpoint.load("BLOCK_NAME")
            return run_inference("data/in.parquet", "data/scored.parquet", endpoint)
        ```
    """

    # A URL may carry credentials and headers hold secrets: validation errors must not echo input.
    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "Guardflow Inference Endpoint"
    _block_type_slug = "guardflow-inference-endpoint"
    _logo_url = LOGO_URL  # type: ignore[assignment]
    _documentation_url = DOCUMENTATION_URL  # type: ignore[assignment]

    url: str = Field(
        default=...,
        description="Base URL of the model server, for example http://127.0.0.1:5001.",
        examples=["http://127.0.0.1:5001"],
    )
    protocol: Protocol = Field(
        default=Protocol.MLFLOW,
        description=(
            "Wire protocol the server speaks: mlflow, v2 (KServe, Triton, MLServer, Seldon), "
            "bentoml, openai, openai-embeddings or json."
        ),
    )
    model_name: str | None = Field(
        default=None,
        description="Model name (the v2 URL path segment, the OpenAI model); optional for MLflow.",
    )
    model_version: str | None = Field(
        default=None, description="Model version (v2 /versions/{version}), if the server has one."
    )
    api_name: str = Field(
        default=_ENDPOINT_DEFAULTS.api_name,
        description="BentoML API name, called as POST /{api_name}.",
    )
    token: SecretStr | None = Field(
        default=None, description="Bearer token sent in the Authorization header, if any."
    )
    headers: SecretDict | None = Field(
        default=None,
        description="Extra request headers, stored encrypted (for example an API-key header).",
    )
    batch_size: int = Field(
        default=_BATCHING.batch_size, ge=1, description="Rows sent in one request."
    )
    concurrency: int = Field(
        default=_BATCHING.concurrency, ge=1, description="Requests in flight at once."
    )
    requests_per_second: float | None = Field(
        default=None, gt=0, description="Optional cap on the request rate."
    )
    max_attempts: int = Field(
        default=_RETRY.max_attempts,
        ge=1,
        description="Attempts per batch (the first included) before its rows are dead-lettered.",
    )
    connect_timeout: float = Field(
        default=_TIMEOUTS.connect, gt=0, description="Seconds to establish a connection."
    )
    read_timeout: float = Field(
        default=_TIMEOUTS.read, gt=0, description="Seconds to wait for the server's answer."
    )
    write_timeout: float = Field(
        default=_TIMEOUTS.write, gt=0, description="Seconds to send one request body."
    )
    pool_timeout: float = Field(
        default=_TIMEOUTS.pool, gt=0, description="Seconds to wait for a free pooled connection."
    )
    verify: bool | str = Field(
        default=True,
        description="TLS verification: true, false, or the path of a CA bundle file.",
    )
    json_request_key: str = Field(
        default=_ENDPOINT_DEFAULTS.json_request_key,
        description="json protocol: the request body is {json_request_key: rows}.",
    )
    json_response_path: str = Field(
        default=_ENDPOINT_DEFAULTS.json_response_path,
        description="json protocol: dotted path to the list of predictions in the answer.",
    )
    prompt_column: str | None = Field(
        default=None, description="OpenAI protocols: the column holding the prompt or text."
    )
    system_prompt: str | None = Field(
        default=None, description="OpenAI chat protocol: an optional system message."
    )
    openai_params: dict[str, Any] = Field(
        default_factory=dict,
        description="OpenAI chat protocol: extra body fields such as temperature or max_tokens.",
    )
    ready_path: str | None = Field(
        default=None,
        description="Path of the readiness probe, when the protocol's default does not fit.",
    )
    v2_input_name: str | None = Field(
        default=None,
        description=(
            "v2 protocol: send each batch as one [rows, columns] tensor of this name instead of "
            "one tensor per column."
        ),
    )
    v2_output_name: str | None = Field(
        default=None,
        description="v2 protocol: the output tensor holding the predictions (default: the first).",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("the model server URL must start with http:// or https://")
        return value

    def to_endpoint_config(self) -> EndpointConfig:
        """Return the core :class:`~guardflow.inference.config.EndpointConfig` of this block.

        Returns:
            The endpoint configuration, secrets still wrapped.

        Raises:
            ConfigurationError: A field does not validate (e.g. a URL without http:// or
                https://); the message names the fields, never their values.
        """
        try:
            return EndpointConfig(
                url=self.url,
                protocol=self.protocol,
                model_name=self.model_name,
                model_version=self.model_version,
                api_name=self.api_name,
                token=self.token,
                headers=dict(self.headers.get_secret_value()) if self.headers else {},
                timeouts=Timeouts(
                    connect=self.connect_timeout,
                    read=self.read_timeout,
                    write=self.write_timeout,
                    pool=self.pool_timeout,
                ),
                verify=self.verify,
                json_request_key=self.json_request_key,
                json_response_path=self.json_response_path,
                prompt_column=self.prompt_column,
                system_prompt=self.system_prompt,
                openai_params=self.openai_params,
                ready_path=self.ready_path,
                v2_input_name=self.v2_input_name,
                v2_output_name=self.v2_output_name,
            )
        except ValidationError as exc:
            raise ConfigurationError.from_validation(exc, what="InferenceEndpoint block") from None

    def to_config(
        self,
        *,
        key_column: str | None = None,
        input_columns: list[str] | None = None,
        prediction_column: str = "prediction",
        max_failed_fraction: float = 0.0,
        probe: bool = True,
    ) -> InferenceConfig:
        """Return the full :class:`~guardflow.inference.config.InferenceConfig` for one step.

        The block holds what belongs to the endpoint; the arguments hold what belongs to the step.

        Args:
            key_column: Column identifying each row; by default the row's position.
            input_columns: Columns sent to the model (default: all but ``key_column``).
            prediction_column: Name of the prediction column in the output.
            max_failed_fraction: Largest share of rows allowed to end in the dead-letter output
                before the step fails (0.01 means 1%).
            probe: Run a readiness probe before the first batch.

        Returns:
            The inference configuration.

        Raises:
            ConfigurationError: A field or argument does not validate.

        Examples:
            ```python
            config = InferenceEndpoint.load("BLOCK_NAME").to_config(key_column="id")
            ```
        """
        endpoint = self.to_endpoint_config()
        try:
            return InferenceConfig(
                endpoint=endpoint,
                batching=BatchPolicy(
                    batch_size=self.batch_size,
                    concurrency=self.concurrency,
                    requests_per_second=self.requests_per_second,
                ),
                retry=RetryPolicy(max_attempts=self.max_attempts),
                failure=FailurePolicy(max_failed_fraction=max_failed_fraction),
                key_column=key_column,
                input_columns=input_columns,
                prediction_column=prediction_column,
                probe=probe,
            )
        except ValidationError as exc:
            raise ConfigurationError.from_validation(exc, what="inference step") from None


def _progress_key(artifact_key: str | None) -> str | None:
    return f"{artifact_key}-progress" if artifact_key else None


_TASK_OPTIONS: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [10, 60],
    "retry_condition_fn": retry_on_retryable_error,
    # Results would be pickled into result storage; the output lives at its URI already.
    "persist_result": False,
    "cache_policy": NONE,
}


@task(name="run_inference", **_TASK_OPTIONS)
def run_inference(
    source: Any,
    output: str,
    endpoint: InferenceEndpoint,
    *,
    key_column: str | None = None,
    input_columns: list[str] | None = None,
    max_failed_fraction: float = 0.0,
    dead_letter: str | None = None,
    checkpoint_dir: str | None = None,
    artifact_key: str | None = "guardflow-inference",
    token: SecretValue | str | None = None,
    vault_credentials: VaultCredentials | None = None,
) -> dict[str, Any]:
    """Score ``source`` on a model server and write one prediction per row to ``output``.

    Retries (2 by default) happen only for failures worth repeating: server back-pressure,
    timeouts, a server that is down or still loading. A retry resumes: batches written by an
    earlier attempt are not sent again. Progress shows as a progress artifact, the summary as a
    markdown artifact under ``artifact_key``, and guardflow's log lines in the task run's logs.

    Args:
        source: Records, a pandas or polars DataFrame, an Arrow table, or a Parquet, CSV or JSONL
            path or URI.
        output: Where predictions go (``.parquet`` or ``.jsonl``, a path or URI): the input
            columns plus a ``prediction`` column, written atomically.
        endpoint: The model server.
        key_column: Column identifying each row; by default the row's position.
        input_columns: Columns sent to the model (default: all but ``key_column``).
        max_failed_fraction: Share of rows allowed in the dead-letter output before the task
            fails (0.01 means 1%).
        dead_letter: Where failed rows go (default: beside ``output``).
        checkpoint_dir: Where completed batches are checkpointed (default: beside ``output``).
        artifact_key: Key of the summary artifact (lowercase letters, digits, dashes); its
            progress artifact gets ``-progress`` appended. ``None`` creates unkeyed artifacts.
        token: Bearer token overriding the endpoint block's: a
            :class:`~guardflow.secrets.SecretValue`, a literal, or a ``vault://MOUNT/PATH#KEY``
            reference read when the task runs. It never reaches logs, artifacts or the result.
        vault_credentials: How to reach Vault for a ``vault://`` token (default: the
            ``VAULT_*`` variables).

    Returns:
        The step's summary as plain JSON (rows, succeeded, failed, output URI, model version...).

    Raises:
        InferenceFailedRowsError: More rows failed than ``max_failed_fraction`` allows (outputs
            are written first; the summary artifact is created too).
        EndpointNotReadyError: The server is down or the model is not loaded.
        ConfigurationError: The endpoint or arguments are invalid.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.inference import InferenceEndpoint, run_inference

        @flow
        def score() -> dict:
            endpoint = InferenceEndpoint(url="http://127.0.0.1:5001", batch_size=200)
            return run_inference("in.parquet", "out.parquet", endpoint, key_column="id")
        ```
    """
    from prefect.artifacts import create_markdown_artifact

    secret = resolve_credential(token, credentials=vault_credentials)
    config, identity = _prepare(endpoint, key_column, input_columns, max_failed_fraction, secret)
    reporter = ProgressReporter(key=_progress_key(artifact_key), description="Rows scored")
    reporter.start()
    try:
        summary = core.run_inference(
            source,
            output,
            config,
            identity=identity,
            dead_letter=dead_letter,
            checkpoint_dir=checkpoint_dir,
            progress=reporter,
        ).to_dict()
    except InferenceFailedRowsError as exc:
        create_markdown_artifact(**_summary_artifact(exc.summary, artifact_key, failed=True))
        raise
    create_markdown_artifact(**_summary_artifact(summary, artifact_key, failed=False))
    return summary


@task(name="arun_inference", **_TASK_OPTIONS)
async def arun_inference(
    source: Any,
    output: str,
    endpoint: InferenceEndpoint,
    *,
    key_column: str | None = None,
    input_columns: list[str] | None = None,
    max_failed_fraction: float = 0.0,
    dead_letter: str | None = None,
    checkpoint_dir: str | None = None,
    artifact_key: str | None = "guardflow-inference",
    token: SecretValue | str | None = None,
    vault_credentials: VaultCredentials | None = None,
) -> dict[str, Any]:
    """Async twin of :func:`run_inference`, for async flows: same arguments and behaviour.

    Args:
        source: Records, a DataFrame, an Arrow table, or a Parquet, CSV or JSONL path or URI.
        output: Where predictions go (``.parquet`` or ``.jsonl``, a path or URI).
        endpoint: The model server.
        key_column: Column identifying each row; by default the row's position.
        input_columns: Columns sent to the model (default: all but ``key_column``).
        max_failed_fraction: Share of rows allowed in the dead-letter output before the task
            fails.
        dead_letter: Where failed rows go (default: beside ``output``).
        checkpoint_dir: Where completed batches are checkpointed (default: beside ``output``).
        artifact_key: Key of the summary artifact; ``None`` creates unkeyed artifacts.
        token: Bearer token overriding the endpoint block's (a literal, a
            :class:`~guardflow.secrets.SecretValue` or a ``vault://`` reference).
        vault_credentials: How to reach Vault for a ``vault://`` token.

    Returns:
        The step's summary as plain JSON.

    Raises:
        InferenceFailedRowsError: More rows failed than ``max_failed_fraction`` allows.
        EndpointNotReadyError: The server is down or the model is not loaded.
        ConfigurationError: The endpoint or arguments are invalid.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.inference import InferenceEndpoint, arun_inference

        @flow
        async def score() -> dict:
            endpoint = await InferenceEndpoint.aload("BLOCK_NAME")
            return await arun_inference("in.parquet", "out.parquet", endpoint)
        ```
    """
    from prefect.artifacts import acreate_markdown_artifact

    secret = await asyncio.to_thread(resolve_credential, token, credentials=vault_credentials)
    config, identity = _prepare(endpoint, key_column, input_columns, max_failed_fraction, secret)
    reporter = AsyncProgressReporter(key=_progress_key(artifact_key), description="Rows scored")
    await reporter.astart()
    try:
        result = await core.arun_inference(
            source,
            output,
            config,
            identity=identity,
            dead_letter=dead_letter,
            checkpoint_dir=checkpoint_dir,
            progress=reporter,
        )
    except InferenceFailedRowsError as exc:
        await acreate_markdown_artifact(**_summary_artifact(exc.summary, artifact_key, failed=True))
        raise
    finally:
        await reporter.aclose()
    summary = result.to_dict()
    await acreate_markdown_artifact(**_summary_artifact(summary, artifact_key, failed=False))
    return summary


def _prepare(
    endpoint: InferenceEndpoint,
    key_column: str | None,
    input_columns: list[str] | None,
    max_failed_fraction: float,
    token: SecretValue | None = None,
) -> tuple[InferenceConfig, RunIdentity]:
    """What both tasks do before scoring: config, identity, log routing, a first log line."""
    send_core_logs_to_prefect()
    config = endpoint.to_config(
        key_column=key_column, input_columns=input_columns, max_failed_fraction=max_failed_fraction
    )
    if token is not None:
        secret = SecretStr(token.reveal())
        config = config.model_copy(
            update={"endpoint": config.endpoint.model_copy(update={"token": secret})}
        )
    register_secret(config.endpoint.token)
    identity = run_identity()
    ep, batching = config.endpoint, config.batching
    model = f" model {ep.model_name!r}" if ep.model_name else ""
    get_run_logger().info(
        "Scoring on a %s endpoint%s, %d rows per request, %d in flight (attempt %d)",
        ep.protocol.value,
        model,
        batching.batch_size,
        batching.concurrency,
        identity.attempt,
    )
    return config, identity


def _summary_artifact(summary: dict[str, Any], key: str | None, *, failed: bool) -> dict[str, Any]:
    """Arguments of the summary markdown artifact (counts, URIs, model: never row values)."""
    title = "Inference failed: too many rows failed" if failed else "Inference"
    latency = summary.get("latency_ms") or {}
    rows = [
        ("Rows", summary.get("rows")),
        ("Succeeded", summary.get("succeeded")),
        ("Failed (dead-lettered)", summary.get("failed")),
        ("Batches", summary.get("batches")),
        ("Batches resumed from an earlier attempt", summary.get("batches_resumed")),
        ("Model", summary.get("model_name")),
        ("Model version", summary.get("model_version")),
        ("Output", summary.get("output_uri")),
        ("Dead-letter output", summary.get("dead_letter_uri")),
        ("Rows per second", summary.get("rows_per_second")),
        ("Batch latency p50 / p95 (ms)", f"{latency.get('p50')} / {latency.get('p95')}"),
        ("Step key", summary.get("step_key")),
    ]
    lines = [f"### {title}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {'' if value is None else value} |" for name, value in rows]
    if errors := summary.get("errors"):
        counts = ", ".join(f"{name}: {count}" for name, count in errors.items())
        lines += ["", f"Failed batches by error: {counts}"]
    return {
        "markdown": "\n".join(lines) + "\n",
        "key": key,
        "description": "guardflow inference summary",
    }
