"""Configuration of an inference step: endpoint, batching, retries and failure policy.

All models are pydantic and load from YAML (:meth:`InferenceConfig.from_yaml`), so one file serves
an Airflow DAG, a Prefect flow and the CLI alike.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from guardflow.errors import ConfigurationError

__all__ = [
    "BatchPolicy",
    "EndpointConfig",
    "FailurePolicy",
    "InferenceConfig",
    "Protocol",
    "RetryPolicy",
    "Timeouts",
]


class Protocol(str, Enum):
    """Wire protocol spoken by the model server."""

    V2 = "v2"
    """Open Inference Protocol v2: KServe, Triton, MLServer, Seldon."""
    MLFLOW = "mlflow"
    """MLflow scoring server ``POST /invocations``."""
    BENTOML = "bentoml"
    """BentoML ``POST /{api_name}``."""
    OPENAI = "openai"
    """OpenAI-compatible ``/v1/chat/completions`` (vLLM, Ollama, TGI)."""
    OPENAI_EMBEDDINGS = "openai-embeddings"
    """OpenAI-compatible ``/v1/embeddings``."""
    JSON = "json"
    """Plain JSON with a user-given request/response mapping."""


class Timeouts(BaseModel):
    """Per-phase timeouts in seconds."""

    model_config = ConfigDict(extra="forbid")

    connect: float = Field(5.0, gt=0, description="Seconds to establish a connection.")
    read: float = Field(60.0, gt=0, description="Seconds to wait for response bytes.")
    write: float = Field(30.0, gt=0, description="Seconds to send the request body.")
    pool: float = Field(10.0, gt=0, description="Seconds to wait for a free pooled connection.")


class RetryPolicy(BaseModel):
    """How failed requests are retried.

    Retried: connect errors, read timeouts, 408, 429, 502, 503, 504 (exponential backoff with
    full jitter, Retry-After honoured up to ``retry_after_cap``); 500 at most ``max_500_retries``
    times; any other 4xx never. Both attempts and total time are bounded.
    """

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(5, ge=1, description="Attempts per batch, the first included.")
    initial_delay: float = Field(0.5, ge=0, description="Backoff base in seconds.")
    max_delay: float = Field(30.0, ge=0, description="Cap of one computed backoff, in seconds.")
    retry_after_cap: float = Field(60.0, ge=0, description="Cap on a server's Retry-After.")
    max_total_seconds: float = Field(300.0, gt=0, description="Give up on a batch after this.")
    max_500_retries: int = Field(1, ge=0, description="Retries allowed on HTTP 500.")


class BatchPolicy(BaseModel):
    """How rows are grouped into requests and how many requests are in flight."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(100, ge=1, description="Rows per request.")
    concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
    requests_per_second: float | None = Field(
        None, gt=0, description="Optional cap on the request rate."
    )


class FailurePolicy(BaseModel):
    """When rows that still fail after retries fail the whole step."""

    model_config = ConfigDict(extra="forbid")

    max_failed_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Largest share of rows allowed in the dead-letter output (0.01 means 1%).",
    )


class EndpointConfig(BaseModel):
    """A model server endpoint.

    Args:
        url: Base URL of the server, e.g. ``http://127.0.0.1:5001``.
        protocol: Wire protocol; see :class:`Protocol`.
        model_name: Model name (v2 path segment, OpenAI ``model``); optional for MLflow.
        model_version: Model version (v2 ``/versions/{v}``).
        api_name: BentoML API name (``POST /{api_name}``).
        token: Bearer token; never printed.
        headers: Extra request headers (not for credentials: use ``token``).
        timeouts: Per-phase timeouts.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        json_request_key: JSON protocol: the body is ``{json_request_key: rows}``.
        json_response_path: JSON protocol: dotted path to the prediction list in the answer.
        prompt_column: OpenAI protocols: the column holding the prompt or text.
        system_prompt: OpenAI chat: an optional system message.
        openai_params: OpenAI chat: extra body fields (temperature, max_tokens...).
        ready_path: Path of the readiness probe, overriding the protocol's default (``/ping``,
            ``/v2/models/{m}/ready``, ``/readyz``, ``/v1/models``; ``/`` for plain JSON).
        v2_input_name: v2: send the batch as one ``[rows, columns]`` tensor of this name instead
            of one tensor per column.
        v2_output_name: v2: the output tensor holding the predictions (default: the first).
    """

    model_config = ConfigDict(extra="forbid")

    url: str
    protocol: Protocol = Protocol.MLFLOW
    model_name: str | None = None
    model_version: str | None = None
    api_name: str = "predict"
    token: SecretStr | None = None
    # Kept out of repr: a header may carry a credential despite the advice to use ``token``.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    verify: bool | str = True
    json_request_key: str = "instances"
    json_response_path: str = "predictions"
    prompt_column: str | None = None
    system_prompt: str | None = None
    openai_params: dict[str, Any] = Field(default_factory=dict)
    ready_path: str | None = None
    v2_input_name: str | None = None
    v2_output_name: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            # The value is not echoed: a mistyped URL may carry credentials.
            raise ValueError("endpoint url must start with http:// or https://")
        return value.rstrip("/")


class InferenceConfig(BaseModel):
    """Everything an inference step needs besides its input and output.

    Args:
        endpoint: The model server.
        batching: Rows per request, concurrency and rate limit.
        retry: Retry policy.
        failure: When dead-lettered rows fail the step.
        key_column: Column identifying each row; when absent, the row's position is the key.
        input_columns: Columns sent to the model (default: all but ``key_column``).
        prediction_column: Name of the prediction column in the output.
        probe: Run a readiness probe before the first batch.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint: EndpointConfig
    batching: BatchPolicy = Field(default_factory=BatchPolicy)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    failure: FailurePolicy = Field(default_factory=FailurePolicy)
    key_column: str | None = None
    input_columns: list[str] | None = None
    prediction_column: str = "prediction"
    probe: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path) -> InferenceConfig:
        """Load a config from a YAML file.

        Raises:
            ConfigurationError: The file is missing or does not validate.
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except FileNotFoundError as exc:
            raise ConfigurationError(f"inference config file {str(path)!r} not found") from exc
        except ValidationError as exc:
            raise ConfigurationError.from_validation(
                exc, what=f"inference config {str(path)!r}"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"invalid inference config {str(path)!r}: {exc}") from exc
