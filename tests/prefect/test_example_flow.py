"""The Prefect reference workflow (example_dags/prefect) against a real MLflow scoring server."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

from guardflow.testing.model_servers import expected_prediction
from prefect_guardflow.inference import InferenceEndpoint

if TYPE_CHECKING:
    from conftest import PrefectServer

    from guardflow.testing.model_servers import MLflowModelServer

FLOW_FILE = (
    Path(__file__).resolve().parents[2] / "example_dags" / "prefect" / "guardflow_reference.py"
)


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("guardflow_reference_prefect", FLOW_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mlflow_model_server: MLflowModelServer
) -> Path:
    monkeypatch.setenv("GUARDFLOW_DEMO_DIR", str(tmp_path))
    monkeypatch.setenv("GUARDFLOW_ENDPOINT_URL", mlflow_model_server.url)
    monkeypatch.delenv("GUARDFLOW_ENDPOINT_BLOCK", raising=False)
    return tmp_path


def test_reference_flow_scores_every_sample_row(reference: ModuleType, demo_env: Path) -> None:
    summary = reference.guardflow_reference()

    assert (summary["rows"], summary["succeeded"], summary["failed"]) == (250, 250, 0)
    output = Path(summary["output_uri"])
    assert output.is_relative_to(demo_env / "prefect")
    with (output.parent / "input.csv").open(newline="") as fh:
        ingested = list(csv.DictReader(fh))
    scored = pq.read_table(output).to_pylist()
    assert [r["row_id"] for r in scored] == [r["row_id"] for r in ingested]
    for row in scored:
        assert row["prediction"] == pytest.approx(expected_prediction(row))


def test_reference_flow_uses_a_saved_endpoint_block_when_named(
    reference: ModuleType,
    demo_env: Path,
    mlflow_model_server: MLflowModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"reference-{uuid.uuid4().hex[:8]}"
    InferenceEndpoint(url=mlflow_model_server.url, batch_size=100).save(name)
    # The environment points elsewhere: only the block can make this run succeed.
    monkeypatch.setenv("GUARDFLOW_ENDPOINT_URL", "http://127.0.0.1:9")

    summary = reference.guardflow_reference(endpoint_block=name)

    assert summary["succeeded"] == 250
    assert summary["batches"] == 3  # the block's batch size (100), not the default endpoint's


def test_reference_flow_runs_as_a_script_and_prints_where_results_went(
    prefect_server: PrefectServer, demo_env: Path
) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}

    done = subprocess.run(
        [sys.executable, str(FLOW_FILE)], env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("Scored 250 of 250 rows -> ")
    assert Path(last.rsplit(" -> ", 1)[1]).is_file()
