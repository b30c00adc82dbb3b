"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Airflow calls :func:`get_provider_info` whenever it discovers providers, which happens in every
Airflow process, so this module imports nothing. The dict is validated against Airflow's
``provider_info.schema.json``; connection form fields are declared here (``conn-fields``,
``ui-field-behaviour``) rather than on the hook, so the UI never has to import the hook.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "INFERENCE_CONN_TYPE",
    "PROTOCOLS",
    "VAULT_AUTH_TYPES",
    "VAULT_CONN_TYPE",
    "get_provider_info",
]

INFERENCE_CONN_TYPE = "guardflow_inference"

# Mirrors guardflow.inference.config.Protocol; kept literal so provider discovery stays free of
# imports. A test asserts the two never drift apart.
PROTOCOLS = ["mlflow", "v2", "bentoml", "openai", "openai-embeddings", "json"]

_INTEGRATION = "guardflow Inference"
_CHECKS_INTEGRATION = "guardflow Drift and Quality"
_PII_INTEGRATION = "guardflow PII"
_GATES_INTEGRATION = "guardflow Approval Gates"

# --- Vault (guardflow_airflow.hooks.vault) ---
VAULT_CONN_TYPE = "guardflow_vault"
# The auth types guardflow.secrets serves; hashicorp's others (ldap, aws_iam...) are refused.
VAULT_AUTH_TYPES = ["token", "approle", "userpass", "kubernetes", "jwt"]
_VAULT_INTEGRATION = "guardflow Vault"


def _vault_conn_fields() -> dict[str, Any]:
    # Same names as apache-airflow-providers-hashicorp's `vault` type, so one connection serves
    # both hooks; kubernetes_audience, verify and ca_bundle are guardflow's additions.
    def text(label: str, description: str) -> dict[str, Any]:
        return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}

    def flag(label: str, description: str) -> dict[str, Any]:
        schema = {"type": ["boolean", "null"], "default": True}
        return {"label": label, "description": description, "schema": schema}

    return {
        "auth_type": {
            "label": "Auth type",
            "description": "How to log in; login/password hold the credentials it needs.",
            "schema": {"type": ["string", "null"], "enum": VAULT_AUTH_TYPES, "default": "token"},
        },
        "auth_mount_point": text("Auth mount point", "Auth method mount; default its name."),
        "kv_engine_version": {
            "label": "KV engine version",
            "description": "Must be 1 or 2.",
            "schema": {"type": ["integer", "null"], "default": 2, "enum": [1, 2]},
        },
        "namespace": text("Namespace", "Vault Enterprise / OpenBao namespace."),
        "role_id": text("AppRole role id", "approle: role id, when login is empty."),
        "kubernetes_role": text("Kubernetes role", "kubernetes: the Vault role to log in as."),
        "kubernetes_jwt_path": text(
            "Kubernetes jwt path", "kubernetes: service account token file (default in-pod path)."
        ),
        "kubernetes_audience": text(
            "Kubernetes audience", "kubernetes: audience the role expects in the token."
        ),
        "jwt_role": text("JWT role", "jwt: the Vault role to log in as."),
        "jwt_token": {
            "label": "JWT token",
            "description": "jwt: the token itself (or use JWT token path).",
            "schema": {"type": ["string", "null"], "format": "password"},
        },
        "jwt_token_path": text("JWT token path", "jwt: file holding the token."),
        "token_path": text("Token path", "token: file holding the token, when password is empty."),
        "use_tls": flag("Use TLS", "Connect with https (host without a scheme)."),
        "verify": flag("Verify TLS", "Verify the server's certificate."),
        "ca_bundle": text("CA bundle path", "CA bundle used to verify the server's certificate."),
    }


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
            "credentials from Vault or OpenBao, PII masking and scanning, drift checks "
            "compatible with Evidently and Great Expectations suites, with an audit event for "
            "every step."
        ),
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "tags": ["ai", "ai-inference", "machine-learning"],
            },
            {"integration-name": _VAULT_INTEGRATION, "tags": ["security", "secrets"]},
            # --- drift and data quality (helper H) ---
            {
                "integration-name": _CHECKS_INTEGRATION,
                "tags": ["data-quality", "data-drift", "machine-learning"],
            },
            # --- PII masking and scanning (issue 4) ---
            {"integration-name": _PII_INTEGRATION, "tags": ["security", "data-quality"]},
            # --- approval gates (issue 6) ---
            {"integration-name": _GATES_INTEGRATION, "tags": ["ai", "machine-learning"]},
        ],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["guardflow_airflow.operators.inference"],
            },
            {
                "integration-name": _CHECKS_INTEGRATION,
                "python-modules": [
                    "guardflow_airflow.operators.drift",
                    "guardflow_airflow.operators.quality",
                ],
            },
            {
                "integration-name": _PII_INTEGRATION,
                "python-modules": ["guardflow_airflow.operators.pii"],
            },
            {
                "integration-name": _GATES_INTEGRATION,
                "python-modules": ["guardflow_airflow.operators.gates"],
            },
        ],
        "triggers": [
            {
                "integration-name": _GATES_INTEGRATION,
                "python-modules": ["guardflow_airflow.triggers.gates"],
            },
        ],
        "extra-links": ["guardflow_airflow.links.DriftReportLink"],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["guardflow_airflow.hooks.inference"],
            },
            {
                "integration-name": _VAULT_INTEGRATION,
                "python-modules": ["guardflow_airflow.hooks.vault"],
            },
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
            },
            {
                "connection-type": VAULT_CONN_TYPE,
                "hook-class-name": "guardflow_airflow.hooks.vault.VaultHook",
                "hook-name": "guardflow Vault",
                "conn-fields": _vault_conn_fields(),
                "ui-field-behaviour": {
                    "relabeling": {
                        "schema": "KV mount point",
                        "login": "Login (role id / username)",
                        "password": "Password (token / secret id / password)",
                    },
                    "placeholders": {
                        "host": "vault.internal or https://vault.internal",
                        "port": "8200",
                        "schema": "secret",
                        "login": "approle role id or userpass username",
                    },
                },
            },
        ],
    }
