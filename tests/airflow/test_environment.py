"""The Airflow environment resolves to the Airflow release the provider is built against."""

from __future__ import annotations

from importlib.metadata import version

from packaging.version import Version


def test_the_airflow_environment_has_airflow_3_3_or_newer() -> None:
    # Guards against the resolver quietly falling back to an older Airflow (floors stay honest).
    assert Version(version("apache-airflow")) >= Version("3.3")
