"""Prefect 3 tasks and blocks for guardflow: guardrailed inference, PII, drift, gates and Vault.

Importing the package registers its blocks with Prefect (the ``prefect.collections`` entry point
imports it), so it stays light: no pandas, pyarrow or model-server client at import time.

Examples:
    ```python
    from prefect_guardflow import InferenceEndpoint, request_approval, run_inference
    ```
"""

from __future__ import annotations

from prefect_guardflow.gates import GateDecisionInput, arequest_approval, request_approval
from prefect_guardflow.inference import InferenceEndpoint, arun_inference, run_inference
from prefect_guardflow.pii import amask_pii, ascan_pii, mask_pii, scan_pii
from prefect_guardflow.vault import (
    VaultCredentials,
    VaultSecret,
    aread_vault_secret,
    read_vault_secret,
)

__all__ = [
    "GateDecisionInput",
    "InferenceEndpoint",
    "VaultCredentials",
    "VaultSecret",
    "amask_pii",
    "aread_vault_secret",
    "arequest_approval",
    "arun_inference",
    "ascan_pii",
    "mask_pii",
    "read_vault_secret",
    "request_approval",
    "run_inference",
    "scan_pii",
]
