"""Inference calls against model servers: clients, protocol adapters and the inference step.

Examples:
    >>> from guardflow.inference import InferenceConfig, run_inference
    >>> config = InferenceConfig.model_validate(
    ...     {"endpoint": {"url": "http://127.0.0.1:5001", "protocol": "mlflow"}}
    ... )
    >>> run_inference("rows.parquet", "scores.parquet", config).succeeded  # doctest: +SKIP
    1000
"""

from __future__ import annotations

from guardflow.inference.client import AsyncInferenceClient, BatchPrediction, InferenceClient
from guardflow.inference.config import (
    BatchPolicy,
    EndpointConfig,
    FailurePolicy,
    InferenceConfig,
    Protocol,
    RetryPolicy,
    Timeouts,
)
from guardflow.inference.results import InferenceSummary, LatencyStats
from guardflow.inference.retry import RetryClock
from guardflow.inference.runner import (
    InferenceResult,
    apredict,
    arun_inference,
    predict,
    run_inference,
)

__all__ = [
    "AsyncInferenceClient",
    "BatchPolicy",
    "BatchPrediction",
    "EndpointConfig",
    "FailurePolicy",
    "InferenceClient",
    "InferenceConfig",
    "InferenceResult",
    "InferenceSummary",
    "LatencyStats",
    "Protocol",
    "RetryClock",
    "RetryPolicy",
    "Timeouts",
    "apredict",
    "arun_inference",
    "predict",
    "run_inference",
]
