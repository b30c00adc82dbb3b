"""The Prefect environment resolves to the Prefect release the integration is built against."""

from __future__ import annotations

from importlib.metadata import version

from packaging.version import Version


def test_the_prefect_environment_has_prefect_3_9_or_newer() -> None:
    # Adding a dependency once made the lock fall back to Prefect 3.7 (shared with Airflow's
    # fastapi pin); this keeps that from landing unnoticed.
    assert Version(version("prefect")) >= Version("3.9")
