"""guardflow: guardrails around AI steps in Airflow and Prefect pipelines.

One orchestrator-agnostic core: inference calls to model servers, human approval gates, PII
masking, drift and data-quality checks, and Vault secret lookup. The Airflow provider
(``guardflow_airflow``) and the Prefect integration (``prefect_guardflow``) are thin adapters over
it. Importing this package imports no orchestrator and no heavy dependency.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("guardflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = ["__version__"]
