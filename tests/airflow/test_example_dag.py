"""The reference workflow (example_dags/airflow/guardflow_reference.py) runs end to end.

It is run the two ways users run it: ``dag.test()`` from Python, and ``python <file>`` (what
``make demo`` does), against MLflow's real scoring server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardflow.testing.model_servers import expected_prediction

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "example_dags" / "airflow" / "guardflow_reference.py"
DAG_ID = "guardflow_reference"
PLANTED_TOKEN = "gf-planted-token-7f3c9a1e5b"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def reference_dag(load_dag: Callable[[Path, str], Any]) -> Any:
    return load_dag(DAG_FILE, DAG_ID)


def test_reference_dag_chains_ingest_score_deliver(reference_dag: Any) -> None:
    order = {t.task_id: sorted(t.downstream_task_ids) for t in reference_dag.tasks}

    assert order == {"ingest": ["score"], "score": ["deliver"], "deliver": []}


def test_reference_dag_scores_the_sample_on_the_model_server(
    inference_conn: str, reference_dag: Any, run_summary: Any, airflow_home: Path
) -> None:
    import pyarrow.parquet as pq

    result = run_summary(reference_dag.test())

    assert result.state == "success"
    summary = result.xcom[("score", "return_value")]
    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (250, 250, 0)
    assert result.xcom[("deliver", "return_value")] == summary
    output = Path(summary["output_uri"])
    assert output.is_relative_to(airflow_home / "demo")
    rows = pq.read_table(output).to_pylist()
    assert len({r["row_id"] for r in rows}) == 250
    assert all(r["prediction"] == pytest.approx(expected_prediction(r)) for r in rows)
    assert PLANTED_TOKEN not in repr(result.xcom)


def test_reference_dag_file_runs_as_a_script(inference_conn: str, airflow_db: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(DAG_FILE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=os.environ.copy(),
    )

    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Results: 250 of 250 rows scored" in log
    assert "state=success" in log
    assert PLANTED_TOKEN not in log
