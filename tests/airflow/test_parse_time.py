"""Parse time is sacred: importing the provider or parsing a DAG file loads nothing heavy.

Each check runs in a fresh interpreter under ``python -X importtime`` and reads every module that
interpreter imported, so an import hidden anywhere in the chain is caught, and the failure shows
the lines of the import tree that pulled it in.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import guardflow_airflow

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "pandas",
    "polars",
    "numpy",
    "pyarrow",
    "evidently",
    "great_expectations",
    "mlflow",
    "hvac",
    "presidio_analyzer",
    "presidio_anonymizer",
    "spacy",
)
DAG_FILES = sorted((ROOT / "example_dags" / "airflow").glob("*.py"))


def _provider_modules() -> list[str]:
    found = pkgutil.walk_packages(guardflow_airflow.__path__, prefix="guardflow_airflow.")
    return ["guardflow_airflow", *sorted(m.name for m in found)]


def _imported(code: str) -> tuple[set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    modules = {ln.rsplit("|", 1)[-1].strip() for ln in lines}
    return modules, "\n".join(lines)


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


def _culprits(tree: str, heavy: set[str]) -> str:
    roots = {m.split(".")[0] for m in heavy}
    return "\n".join(ln for ln in tree.splitlines() if ln.rsplit("|", 1)[-1].strip() in roots)


def test_every_provider_module_is_found() -> None:
    modules = _provider_modules()

    assert "guardflow_airflow.hooks.inference" in modules
    assert "guardflow_airflow.operators.inference" in modules
    assert "guardflow_airflow.operators.drift" in modules
    assert "guardflow_airflow.operators.quality" in modules
    assert "guardflow_airflow.operators.pii" in modules
    assert "guardflow_airflow.links" in modules


def test_importing_every_provider_module_loads_nothing_heavy() -> None:
    modules, tree = _imported("; ".join(f"import {m}" for m in _provider_modules()))

    assert "guardflow_airflow.operators.inference" in modules
    assert "guardflow_airflow.operators.drift" in modules
    assert "guardflow_airflow.operators.quality" in modules
    heavy = _heavy(modules)
    assert not heavy, f"heavy modules imported: {sorted(heavy)}\n{_culprits(tree, heavy)}"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_parsing_a_dag_file_loads_nothing_heavy(dag_file: Path) -> None:
    # What the DAG processor does with the file: execute it as a module, not as __main__.
    code = f"import runpy; runpy.run_path({str(dag_file)!r}, run_name='dag_file')"
    modules, tree = _imported(code)

    assert "guardflow_airflow.operators.inference" in modules
    heavy = _heavy(modules)
    assert not heavy, f"heavy modules imported: {sorted(heavy)}\n{_culprits(tree, heavy)}"
