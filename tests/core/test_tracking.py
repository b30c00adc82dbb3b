"""MLflow logging of drift reports and quality summaries, read back from a real tracking store."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

from guardflow.audit import MemoryAuditSink
from guardflow.drift import DriftReport, check_drift
from guardflow.errors import TrackingError
from guardflow.quality import QualitySummary, validate_data
from guardflow.tracking import log_drift_report, log_quality_summary, metric_name

# A category value planted in the data: it must reach no MLflow param, tag or metric name.
PLANTED = "planted-ssn-078-05-1120"


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite tracking database, created once (MLflow's migrations take seconds)."""
    path = tmp_path_factory.mktemp("mlflow") / "template.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_db: Path) -> str:
    """A fresh SQLite tracking store; artifacts land in tmp_path (MLflow puts them under cwd)."""
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(migrated_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _frames(shift: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng(7)
    cats = ["a", "b", PLANTED]

    def rows(offset: float, weights: list[float]) -> list[dict[str, Any]]:
        return [
            {
                "age": float(x),
                "first name": str(c),
                "income/yr": float(y),
            }
            for x, c, y in zip(
                rng.normal(40 + offset, 5, 600),
                rng.choice(cats, 600, p=weights),
                rng.normal(1000, 50, 600),
                strict=True,
            )
        ]

    return rows(0.0, [0.4, 0.4, 0.2]), rows(shift, [0.2, 0.2, 0.6])


@pytest.fixture(scope="module")
def report() -> DriftReport:
    reference, current = _frames(shift=8.0)
    return check_drift(reference, current, audit_sink=MemoryAuditSink())


@pytest.fixture(scope="module")
def summary() -> QualitySummary:
    suite = {
        "name": "people",
        "expectations": [
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "first name", "value_set": ["a", "b"]},
            },
            {
                "type": "expect_column_mean_to_be_between",
                "kwargs": {"column": "age", "max_value": 1},
            },
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
        ],
    }
    return validate_data(_frames(0.0)[0], suite, audit_sink=MemoryAuditSink())


def _everything_logged(client: MlflowClient, run_id: str) -> str:
    data = client.get_run(run_id).data
    return json.dumps([sorted(data.metrics), data.params, data.tags])


def test_drift_scores_and_share_are_metrics(tracking_uri: str, report: DriftReport) -> None:
    run_id = log_drift_report(report, tracking_uri=tracking_uri, experiment="drift")
    metrics = MlflowClient(tracking_uri).get_run(run_id).data.metrics
    assert metrics["drift.drifted_share"] == pytest.approx(report.drifted_share)
    assert metrics["drift.dataset_drift"] == 1.0
    assert metrics["drift.age.score"] == pytest.approx(report.columns[0].score)
    assert metrics["drift.current_rows"] == 600


def test_column_names_are_sanitised_and_stay_distinct(
    tracking_uri: str, report: DriftReport
) -> None:
    run_id = log_drift_report(report, tracking_uri=tracking_uri)
    scores = {
        k for k in MlflowClient(tracking_uri).get_run(run_id).data.metrics if k.endswith(".score")
    }
    assert scores == {
        "drift.age.score",
        metric_name("drift.", "first name", ".score"),
        metric_name("drift.", "income/yr", ".score"),
    }
    assert all(" " not in k and "/" not in k for k in scores)
    assert metric_name("drift.", "first name") != metric_name("drift.", "first_name")


def test_settings_are_params_and_fingerprints_are_tags(
    tracking_uri: str, report: DriftReport
) -> None:
    run_id = log_drift_report(report, tracking_uri=tracking_uri, run_name="nightly")
    run = MlflowClient(tracking_uri).get_run(run_id)
    assert run.data.params == {
        "drift.engine": "native",
        "drift.methods": ",".join(sorted({c.method for c in report.columns})),
        "drift.drift_share": "0.5",
    }
    assert run.data.tags["guardflow.reference_fingerprint"] == report.reference_fingerprint
    assert run.data.tags["guardflow.current_fingerprint"] == report.current_fingerprint
    assert run.data.tags["guardflow.dataset_drift"] == "true"
    assert run.info.run_name == "nightly" and run.info.status == "FINISHED"


def test_the_report_json_is_an_artifact(tracking_uri: str, report: DriftReport) -> None:
    run_id = log_drift_report(report, tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri)
    assert [a.path for a in client.list_artifacts(run_id, "guardflow")] == [
        "guardflow/drift_report.json"
    ]
    local = client.download_artifacts(run_id, "guardflow/drift_report.json", ".")
    assert DriftReport.from_json(Path(local).read_bytes()) == report


def test_the_html_report_is_logged_when_there_is_one(
    tracking_uri: str, report: DriftReport, tmp_path: Path
) -> None:
    html = tmp_path / "evidently.html"
    html.write_text("<html><body>drift</body></html>", encoding="utf-8")
    with_html = report.model_copy(update={"html_uri": str(html)})
    run_id = log_drift_report(with_html, tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri)
    paths = sorted(a.path for a in client.list_artifacts(run_id, "guardflow"))
    assert paths == ["guardflow/drift_report.html", "guardflow/drift_report.json"]
    local = client.download_artifacts(run_id, "guardflow/drift_report.html", str(tmp_path / "dl"))
    assert Path(local).read_text(encoding="utf-8") == html.read_text(encoding="utf-8")


def test_logging_into_an_existing_run_leaves_it_running(
    tracking_uri: str, report: DriftReport, summary: QualitySummary
) -> None:
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("pipeline")
    run_id = client.create_run(experiment_id).info.run_id
    assert log_drift_report(report, tracking_uri=tracking_uri, run_id=run_id) == run_id
    assert log_quality_summary(summary, tracking_uri=tracking_uri, run_id=run_id) == run_id
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"
    assert {"drift.drifted_share", "quality.success"} <= set(run.data.metrics)


def test_quality_counts_are_metrics_and_the_summary_an_artifact(
    tracking_uri: str, summary: QualitySummary
) -> None:
    run_id = log_quality_summary(summary, tracking_uri=tracking_uri, experiment="quality")
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.data.metrics["quality.success"] == 0.0
    assert run.data.metrics["quality.unsuccessful"] == 2
    in_set = metric_name("quality.expect_column_values_to_be_in_set.", "first name")
    assert run.data.metrics[f"{in_set}.unexpected_count"] == summary.failed[0].unexpected_count
    mean = "quality.expect_column_mean_to_be_between.age.observed_value"
    assert run.data.metrics[mean] == pytest.approx(summary.failed[1].observed_value)
    assert run.data.params == {"quality.suite": "people"}
    assert run.data.tags["guardflow.data_fingerprint"] == summary.data_fingerprint
    assert run.data.tags["guardflow.quality_success"] == "false"
    local = client.download_artifacts(run_id, "guardflow/quality_summary.json", ".")
    assert QualitySummary.from_json(Path(local).read_bytes()) == summary


def test_planted_values_reach_no_param_tag_or_metric_name(
    tracking_uri: str, report: DriftReport, summary: QualitySummary
) -> None:
    client = MlflowClient(tracking_uri)
    drift_run = log_drift_report(report, tracking_uri=tracking_uri)
    quality_run = log_quality_summary(summary, tracking_uri=tracking_uri)
    for run_id in (drift_run, quality_run):
        assert PLANTED not in _everything_logged(client, run_id)


def test_a_file_store_works_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: DriftReport
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_drift_report(report, tracking_uri=uri, experiment="files")
    assert MlflowClient(uri).get_run(run_id).data.metrics["drift.dataset_drift"] == 1.0


def test_the_experiment_defaults_to_the_environment_then_guardflow(
    tracking_uri: str, report: DriftReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MlflowClient(tracking_uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    first = log_drift_report(report, tracking_uri=tracking_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    second = log_drift_report(report, tracking_uri=tracking_uri)
    names = [
        client.get_experiment(client.get_run(r).info.experiment_id).name for r in (first, second)
    ]
    assert names == ["guardflow", "from-env"]


def test_mlflows_global_tracking_uri_is_left_alone(tracking_uri: str, report: DriftReport) -> None:
    import mlflow

    before = mlflow.get_tracking_uri()
    log_drift_report(report, tracking_uri=tracking_uri)
    assert mlflow.get_tracking_uri() == before
    assert mlflow.active_run() is None


def test_an_unknown_run_is_a_tracking_error(tracking_uri: str, report: DriftReport) -> None:
    with pytest.raises(TrackingError, match="RESOURCE_DOES_NOT_EXIST") as info:
        log_drift_report(report, tracking_uri=tracking_uri, run_id="0" * 32)
    assert not info.value.retryable


def test_a_deleted_experiment_is_a_tracking_error(tracking_uri: str, report: DriftReport) -> None:
    client = MlflowClient(tracking_uri)
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(TrackingError, match="'gone' is deleted"):
        log_drift_report(report, tracking_uri=tracking_uri, experiment="gone")


def test_an_unreachable_server_is_retryable_and_hides_credentials(
    report: DriftReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://tracker:hunter2-planted@127.0.0.1:{port}"
    with pytest.raises(TrackingError) as info:
        log_drift_report(report, tracking_uri=uri)
    assert info.value.retryable
    assert info.value.tracking_uri == f"http://127.0.0.1:{port}"
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
