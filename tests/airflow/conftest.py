"""Airflow test harness: a throwaway AIRFLOW_HOME on SQLite, migrated once per session.

Airflow reads its configuration when it is first imported, so the environment is set in
``pytest_configure``, before any test module (or fixture) imports airflow. DAGs run with
``dag.test()`` must live in a DAG bundle: ``example_dags/airflow`` is the DAGs folder, and
``tests/airflow/dags`` is a second local bundle holding DAGs that exist only for tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = ROOT / "example_dags" / "airflow"
TEST_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
CONN_ENV = "AIRFLOW_CONN_GUARDFLOW_INFERENCE_DEFAULT"
# Planted in connections; tests assert it never shows up in logs or XCom.
PLANTED_TOKEN = "gf-planted-token-7f3c9a1e5b"

_HOME_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if "airflow" in sys.modules:
        raise pytest.UsageError(
            "airflow was imported before tests/airflow/conftest.py could configure it; "
            "run the Airflow tests in their own session"
        )
    home = Path(tempfile.mkdtemp(prefix="guardflow-airflow-home-"))
    config.stash[_HOME_KEY] = home
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {},
        },
        {
            "name": "guardflow-tests",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(TEST_DAGS_FOLDER)},
        },
    ]
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "GUARDFLOW_AUDIT_PATH": str(home / "audit.jsonl"),
            "GUARDFLOW_DEMO_DIR": str(home / "demo"),
        }
    )
    os.environ.pop(CONN_ENV, None)
    config.addinivalue_line("filterwarnings", "error")
    # Raised inside Airflow's in-process execution API that dag.test() starts; not ours to fix.
    config.addinivalue_line(
        "filterwarnings", "ignore:Using `httpx` with `starlette.testclient` is deprecated"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HOME_KEY, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home(pytestconfig: pytest.Config) -> Path:
    """The session's AIRFLOW_HOME."""
    return pytestconfig.stash[_HOME_KEY]


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """Migrate the session's SQLite metadata database (once; about 15 s)."""
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(airflow), "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"airflow db migrate failed:\n{proc.stdout}\n{proc.stderr}"
    return airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def load_dag(airflow_db: Path) -> Callable[[Path, str], Any]:
    """Return ``load(dag_file, dag_id)``: the DAG object defined by a file in a DAG bundle."""
    modules: dict[Path, Any] = {}

    def load(dag_file: Path, dag_id: str) -> Any:
        if dag_file not in modules:
            name = f"guardflow_test_dag_{len(modules)}_{dag_file.stem}"
            spec = importlib.util.spec_from_file_location(name, dag_file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            modules[dag_file] = module
        (dag,) = [
            v
            for v in vars(modules[dag_file]).values()
            if getattr(v, "dag_id", None) == dag_id and hasattr(v, "test")
        ]
        return dag

    return load


@pytest.fixture(scope="session")
def run_summary() -> Callable[[Any], RunResult]:
    """Return ``collect(dag_run)``: each task's state, try number and XComs after ``dag.test()``."""

    def collect(dag_run: Any) -> RunResult:
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            tis = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
                )
            ).all()
            rows: list[Any] = list(
                session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id))
            )
            return RunResult(
                state=str(dag_run.state),
                tasks={ti.task_id: (str(ti.state), ti.try_number) for ti in tis},
                xcom={(r.task_id, r.key): XComModel.deserialize_value(r) for r in rows},
            )

    return collect


@dataclass(frozen=True)
class RunResult:
    """What a DAG run left behind: run state, ``task_id -> (state, try number)``, XComs."""

    state: str
    tasks: dict[str, tuple[str, int]]
    xcom: dict[tuple[str, str], Any]


def connection_json(url: str, *, token: str | None = PLANTED_TOKEN, **extra: Any) -> str:
    """Return a ``guardflow_inference`` connection in Airflow's JSON env-var form."""
    conn: dict[str, Any] = {"conn_type": "guardflow_inference", "host": url}
    if token:
        conn["password"] = token
    conn["extra"] = {"protocol": "mlflow", **extra}
    return json.dumps(conn)


@pytest.fixture(scope="session")
def planted_token() -> str:
    """The token every test connection carries; it must never show up in logs or XCom."""
    return PLANTED_TOKEN


@pytest.fixture
def set_inference_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Return ``set(url, **extra)``: point ``guardflow_inference_default`` at ``url``."""

    def set_conn(url: str, **extra: Any) -> None:
        monkeypatch.setenv(CONN_ENV, connection_json(url, **extra))

    return set_conn


@pytest.fixture
def inference_conn(set_inference_conn: Callable[..., None], mlflow_model_server: Any) -> str:
    """Point ``guardflow_inference_default`` at the session's MLflow scoring server."""
    set_inference_conn(mlflow_model_server.url, batch_size=20)
    url: str = mlflow_model_server.url
    return url
