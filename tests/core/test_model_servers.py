"""The pytest plugin's model servers serve real predictions, restart, and fail loudly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.errors import EndpointNotReadyError
from guardflow.inference import (
    AsyncInferenceClient,
    InferenceClient,
    InferenceConfig,
    run_inference,
)
from guardflow.inference.config import BatchPolicy
from guardflow.testing.fault_server import FaultServer
from guardflow.testing.model_servers import (
    FEATURES,
    MLflowModelServer,
    MLServerModelServer,
    ensure_mlserver_env,
    expected_prediction,
    sample_rows,
)

pytestmark = pytest.mark.timeout(600)


def _v2_body(rows: list[dict[str, float]]) -> dict[str, object]:
    data = [[row[f] for f in FEATURES] for row in rows]
    return {"inputs": [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": data}]}


def test_mlflow_server_answers_invocations_with_the_tiny_models_predictions(
    mlflow_model_server: MLflowModelServer,
) -> None:
    rows = sample_rows(5)
    response = httpx.post(
        f"{mlflow_model_server.url}/invocations", json={"dataframe_records": rows}, timeout=30
    )
    assert response.status_code == 200
    assert response.json()["predictions"] == pytest.approx([expected_prediction(r) for r in rows])


def test_mlserver_answers_v2_infer_with_the_tiny_models_predictions(
    mlserver_model_server: MLServerModelServer,
) -> None:
    rows = sample_rows(5)
    response = httpx.post(
        f"{mlserver_model_server.url}/v2/models/tiny-model/infer", json=_v2_body(rows), timeout=30
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["model_name"], body["model_version"]) == ("tiny-model", "1")
    assert body["outputs"][0]["data"] == pytest.approx([expected_prediction(r) for r in rows])


def test_inference_client_predicts_through_the_mlflow_server(
    mlflow_model_server: MLflowModelServer,
) -> None:
    rows = sample_rows(7)
    with InferenceClient(mlflow_model_server.endpoint()) as client:
        client.check_ready()
        batch = client.predict_batch(rows, idempotency_key="k-1")
    assert batch.predictions == pytest.approx([expected_prediction(r) for r in rows])


def test_inference_client_predicts_through_mlserver_v2(
    mlserver_model_server: MLServerModelServer,
) -> None:
    rows = sample_rows(7)
    with InferenceClient(mlserver_model_server.endpoint()) as client:
        client.check_ready()
        batch = client.predict_batch(rows)
    assert batch.predictions == pytest.approx([expected_prediction(r) for r in rows])
    assert (batch.model_name, batch.model_version) == ("tiny-model", "1")


async def test_async_inference_client_predicts_through_mlserver_v2(
    mlserver_model_server: MLServerModelServer,
) -> None:
    rows = sample_rows(3, seed=1)
    async with AsyncInferenceClient(mlserver_model_server.endpoint()) as client:
        await client.check_ready()
        batch = await client.predict_batch(rows)
    assert batch.predictions == pytest.approx([expected_prediction(r) for r in rows])


@pytest.mark.parametrize("fixture", ["mlflow_model_server", "mlserver_model_server"])
def test_run_inference_writes_one_aligned_prediction_per_row(
    fixture: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    guardflow_audit_sink: MemoryAuditSink,
) -> None:
    server: MLflowModelServer | MLServerModelServer = request.getfixturevalue(fixture)
    rows = sample_rows(45, key_column="id")
    config = InferenceConfig(
        endpoint=server.endpoint(), key_column="id", batching=BatchPolicy(batch_size=10)
    )
    summary = run_inference(
        rows, str(tmp_path / "out.jsonl"), config, audit_sink=guardflow_audit_sink
    )
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert (summary.succeeded, summary.failed, summary.batches) == (45, 0, 5)
    assert sorted(r["id"] for r in written) == sorted(r["id"] for r in rows)
    by_id = {r["id"]: r for r in rows}
    for out in written:
        assert out["prediction"] == pytest.approx(expected_prediction(by_id[out["id"]]))


def test_restart_serves_again_on_the_same_url_from_a_new_process(
    mlflow_model_server: MLflowModelServer,
) -> None:
    url, pid = mlflow_model_server.url, mlflow_model_server.pid
    mlflow_model_server.restart()
    rows = sample_rows(2)
    response = httpx.post(f"{url}/invocations", json={"dataframe_records": rows}, timeout=30)
    assert (mlflow_model_server.url, response.status_code) == (url, 200)
    assert mlflow_model_server.pid not in (None, pid)
    assert response.json()["predictions"] == pytest.approx([expected_prediction(r) for r in rows])


def test_readiness_probe_fails_while_the_server_is_stopped(
    mlflow_model_server: MLflowModelServer,
) -> None:
    mlflow_model_server.stop()
    try:
        with (
            InferenceClient(mlflow_model_server.endpoint()) as client,
            pytest.raises(EndpointNotReadyError),
        ):
            client.check_ready()
    finally:
        mlflow_model_server.start()


def test_a_server_that_cannot_start_raises_with_the_tail_of_its_log(tmp_path: Path) -> None:
    broken = MLflowModelServer(tmp_path, startup_timeout=60)
    broken.model_dir.mkdir()
    (broken.model_dir / "MLmodel").write_text("flavors: {}\n")  # no servable flavor
    with pytest.raises(EndpointNotReadyError, match="exited before it was ready") as excinfo:
        broken.start()
    assert str(broken.log_path) in str(excinfo.value)
    assert "Last lines:" in str(excinfo.value)
    assert not broken.is_running()


def test_cached_mlserver_environment_is_reused_not_rebuilt(
    mlserver_model_server: MLServerModelServer,
) -> None:
    assert mlserver_model_server.env is not None
    cache_dir = mlserver_model_server.env.path.parent
    again = ensure_mlserver_env(cache_dir=cache_dir)
    assert (again.path, again.build_seconds) == (mlserver_model_server.env.path, None)


def test_plugin_provides_the_fault_server_fixture(fault_server: FaultServer) -> None:
    assert fault_server.url.startswith("http://127.0.0.1:")


def test_importing_the_plugin_loads_no_heavy_library() -> None:
    heavy = ["mlflow", "sklearn", "pandas", "numpy", "pyarrow", "polars", "httpx"]
    code = f"import sys, guardflow.testing; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
