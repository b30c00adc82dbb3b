"""Apache Airflow 3 provider for guardflow: guardrailed AI steps as hooks and operators.

Importing this package is cheap on purpose: DAG files import it on every scheduler parse loop, so
it pulls in neither the guardflow runtime nor any heavy dependency. Hooks and operators live in
:mod:`guardflow_airflow.hooks` and :mod:`guardflow_airflow.operators`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airflow-provider-guardflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = ["__version__"]
