"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Airflow calls :func:`get_provider_info` whenever it discovers providers, which happens in every
Airflow process, so this module imports nothing. The dict is validated against Airflow's
``provider_info.schema.json``; connection form fields are declared here (``conn-fields``,
``ui-field-behaviour``) rather than on the hook, so the UI never has to import the hook.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INFERENCE_CONN_TYPE", "PROTOCOLS", "get_provider_info"]

INFERENCE_CONN_TYPE = "guardflow_inference"

# Mirrors guardflow.inference.config.Protocol; kept literal so provider discovery stays free of
# imports. A test asserts the two never drift apart.
PROTOCOLS = ["mlflow", "v2", "bentoml", "openai", "openai-embeddings", "json"]

_INTEGRATION = "guardflow Inference"


def _inference_conn_fields() -> dict[str, Any]:
    def number(label: str, description: str, default: float, minimum: float) -> dict[str, Any]:
        schema = {"type": ["number", "null"], "default": default, "minimum": minimum}
        return {"label": label, "description": description, "schema": schema}

    def integer(label: str, description: str, default: int) -> dict[str, Any]:
        schema = {"type": ["integer", "null"], "default": default, "minimum": 1}
        return {"label": label, "description": description, "schema": schema}

    def text(label: str, description: str) -> dict[str, Any]:
        return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}

    return {
        "protocol": {
            "label": "Protocol",
            "description": "Wire protocol the model server speaks.",
            "schema": {"type": "string", "enum": PROTOCOLS, "default": "mlflow"},
        },
        "model_name": text("Model name", "v2 path segment or OpenAI model; optional for MLflow."),
        "model_version": text("Model version", "v2 model version (/versions/{v}), if pinned."),
        "api_name": text("BentoML API name", "BentoML endpoint name (POST /{api_name})."),
        "batch_size": integer("Batch size", "Rows sent per request.", 100),
        "concurrency": integer("Concurrency", "Requests in flight at once.", 4),
        "requests_per_second": {
            "label": "Requests per second",
            "description": "Optional cap on the request rate; empty means no cap.",
            "schema": {"type": ["number", "null"], "minimum": 0},
        },
        "connect_timeout": number("Connect timeout (s)", "Seconds to connect.", 5.0, 0),
        "read_timeout": number("Read timeout (s)", "Seconds to wait for an answer.", 60.0, 0),
        "write_timeout": number("Write timeout (s)", "Seconds to send a request.", 30.0, 0),
        "verify_tls": {
            "label": "Verify TLS",
            "description": "Verify the server's TLS certificate (https only).",
            "schema": {"type": ["boolean", "null"], "default": True},
        },
        "ca_bundle": text("CA bundle path", "Path to a CA bundle used to verify TLS."),
        "ready_path": text(
            "Readiness path", "Probe path overriding the protocol's default (e.g. /ping)."
        ),
        "v2_input_name": text(
            "v2 input tensor", "v2: send each batch as one [rows, columns] tensor of this name."
        ),
        "v2_output_name": text(
            "v2 output tensor", "v2: output tensor holding the predictions (default: first)."
        ),
        "json_request_key": text("JSON request key", "json protocol: body is {key: rows}."),
        "json_response_path": text(
            "JSON response path", "json protocol: dotted path to the predictions in the answer."
        ),
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata for Airflow's ProvidersManager.

    Returns:
        A dict valid against Airflow's ``provider_info.schema.json``.

    Examples:
        >>> get_provider_info()["package-name"]
        'airflow-provider-guardflow'
    """
    return {
        "package-name": "airflow-provider-guardflow",
        "name": "guardflow",
        "description": (
            "Guardrailed AI steps for Airflow: batched, retried, resumable inference calls to "
            "model servers (MLflow, Open Inference Protocol v2, BentoML, OpenAI-compatible), "
            "with an audit event for every step."
        ),
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "tags": ["ai", "ai-inference", "machine-learning"],
            }
        ],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["guardflow_airflow.operators.inference"],
            }
        ],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["guardflow_airflow.hooks.inference"],
            }
        ],
        "connection-types": [
            {
                "connection-type": INFERENCE_CONN_TYPE,
                "hook-class-name": "guardflow_airflow.hooks.inference.InferenceHook",
                "hook-name": "guardflow Inference",
                "conn-fields": _inference_conn_fields(),
                "ui-field-behaviour": {
                    "hidden-fields": ["login"],
                    "relabeling": {
                        "host": "Host or base URL",
                        "schema": "Scheme",
                        "password": "Token",
                    },
                    "placeholders": {
                        "host": "http://127.0.0.1:5001 or models.internal",
                        "schema": "http (default) or https, used when the host has no scheme",
                        "port": "5001",
                        "password": "bearer token (optional)",
                        "extra": '{"headers": {"X-Team": "fraud"}}',
                    },
                },
            }
        ],
    }
