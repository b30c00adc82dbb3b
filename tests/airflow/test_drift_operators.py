"""DriftCheckOperator and DriftCheckBranchOperator run by Airflow itself (``dag.test()``).

The DAGs are in ``tests/airflow/dags/drift_checks.py``; the data are the reference workflow's
sample datasets: a reference, a sample from the same distribution and a drifted sample (three of
the four features moved, every value still valid).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from guardflow.samples import DRIFTED_FEATURES, write_reference_csv, write_sample_csv

TEST_DAGS = Path(__file__).resolve().parent / "dags" / "drift_checks.py"
CHECK = "check_drift"

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Data:
    reference: Path
    current: Path
    drifted: Path


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return Data(
        reference=write_reference_csv(tmp_path / "reference.csv"),
        current=write_sample_csv(tmp_path / "current.csv"),
        drifted=write_sample_csv(tmp_path / "drifted.csv", drift=True),
    )


@pytest.fixture
def run_drift_dag(
    load_dag: Callable[[Path, str], Any], run_summary: Callable[[Any], Any], data: Data
) -> Callable[..., Any]:
    """Return ``run(dag_id, current, **conf) -> RunResult`` against the sample reference."""

    def run(dag_id: str, current: Path, **conf: Any) -> Any:
        dag = load_dag(TEST_DAGS, dag_id)
        run_conf = {"reference_uri": str(data.reference), "current_uri": str(current), **conf}
        return run_summary(dag.test(run_conf=run_conf))

    return run


def _data_values(path: Path) -> list[str]:
    """Some of the file's cell values, to check they never reach XCom."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:5]
    return [r[k] for r in rows for k in ("f0", "f1", "f2")]


# -- the check and its summary ----------------------------------------------------------------


def test_undrifted_data_passes_and_the_summary_is_returned(
    run_drift_dag: Callable[..., Any], data: Data
) -> None:
    result = run_drift_dag("guardflow_test_drift_fail", data.current)

    assert result.state == "success"
    assert result.tasks == {CHECK: ("success", 1), "after": ("success", 1)}
    summary = result.xcom[(CHECK, "return_value")]
    assert summary == result.xcom[(CHECK, "drift_summary")]
    assert (summary["dataset_drift"], summary["drifted_columns"]) == (False, [])
    assert [c["column"] for c in summary["columns"]] == ["f0", "f1", "f2", "f3"]
    assert {c["method"] for c in summary["columns"]} == {"ks"}  # Evidently's choice at 1,000 rows
    assert (summary["reference_rows"], summary["current_rows"]) == (1000, 250)


def test_summary_holds_statistics_never_data_values(
    run_drift_dag: Callable[..., Any], data: Data
) -> None:
    result = run_drift_dag("guardflow_test_drift_warn", data.drifted)

    xcom = repr(result.xcom)
    summary = result.xcom[(CHECK, "drift_summary")]
    assert summary["reference_fingerprint"].startswith("sha256:")
    for value in _data_values(data.drifted) + _data_values(data.reference):
        assert value not in xcom


def test_audit_event_carries_the_airflow_identity(
    run_drift_dag: Callable[..., Any], data: Data, airflow_home: Path
) -> None:
    from guardflow.audit import JsonlAuditSink

    run_drift_dag("guardflow_test_drift_fail", data.drifted)

    events = [
        e for e in JsonlAuditSink(airflow_home / "audit.jsonl").read() if e.step_kind == "drift"
    ]
    ident = events[-1].identity
    assert (ident.orchestrator, ident.pipeline, ident.task_id) == (
        "airflow",
        "guardflow_test_drift_fail",
        CHECK,
    )


# -- on_failure -------------------------------------------------------------------------------


def test_fail_policy_fails_the_task_without_retry_naming_the_drifted_columns(
    run_drift_dag: Callable[..., Any], data: Data, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_drift_dag("guardflow_test_drift_fail", data.drifted)

    log = "".join(capfd.readouterr())
    assert result.state == "failed"
    assert result.tasks[CHECK] == ("failed", 1)
    assert result.tasks["after"][0] == "upstream_failed"
    assert "AirflowFailException" in log
    assert "3 of 4 columns drifted" in log and "f0, f1, f2" in log
    summary = result.xcom[(CHECK, "drift_summary")]
    assert (summary["dataset_drift"], summary["drifted_columns"]) == (True, list(DRIFTED_FEATURES))
    assert (CHECK, "return_value") not in result.xcom


def test_warn_policy_logs_a_warning_and_succeeds(
    run_drift_dag: Callable[..., Any], data: Data, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_drift_dag("guardflow_test_drift_warn", data.drifted)

    log = "".join(capfd.readouterr())
    assert result.state == "success"
    assert result.tasks == {CHECK: ("success", 1), "after": ("success", 1)}
    assert "on_failure='warn'" in log and "f0, f1, f2" in log
    assert result.xcom[(CHECK, "return_value")]["dataset_drift"] is True


def test_skip_policy_skips_the_task_and_its_downstream(
    run_drift_dag: Callable[..., Any], data: Data
) -> None:
    result = run_drift_dag("guardflow_test_drift_skip", data.drifted)

    assert result.state == "success"
    assert result.tasks[CHECK][0] == "skipped"
    assert result.tasks["after"][0] == "skipped"
    assert result.xcom[(CHECK, "drift_summary")]["drifted_columns"] == list(DRIFTED_FEATURES)


def test_skip_policy_runs_downstream_when_nothing_drifted(
    run_drift_dag: Callable[..., Any], data: Data
) -> None:
    result = run_drift_dag("guardflow_test_drift_skip", data.current)

    assert result.tasks == {CHECK: ("success", 1), "after": ("success", 1)}


def test_bad_input_fails_whatever_the_policy(
    run_drift_dag: Callable[..., Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_drift_dag("guardflow_test_drift_skip", tmp_path / "missing.csv")

    assert result.tasks[CHECK] == ("failed", 1)
    assert result.tasks["after"][0] == "upstream_failed"
    assert "AirflowFailException" in "".join(capfd.readouterr())


def test_unknown_policy_is_refused_when_the_dag_is_parsed() -> None:
    from guardflow_airflow.operators.drift import DriftCheckOperator

    with pytest.raises(ValueError, match="on_failure must be one of"):
        DriftCheckOperator(
            task_id="x", reference_uri="r.csv", current_uri="c.csv", on_failure="ignore"
        )


# -- branching --------------------------------------------------------------------------------


def test_branch_follows_the_no_drift_tasks_for_undrifted_data(
    run_drift_dag: Callable[..., Any], data: Data
) -> None:
    result = run_drift_dag("guardflow_test_drift_branch", data.current)

    assert result.state == "success"
    assert result.tasks[CHECK] == ("success", 1)
    assert result.tasks["on_no_drift"] == ("success", 1)
    assert result.tasks["on_drift"][0] == "skipped"
    assert result.xcom[(CHECK, "drift_summary")]["dataset_drift"] is False


def test_branch_follows_the_drift_tasks_for_drifted_data(
    run_drift_dag: Callable[..., Any], data: Data
) -> None:
    result = run_drift_dag("guardflow_test_drift_branch", data.drifted)

    assert result.state == "success"
    assert result.tasks["on_drift"] == ("success", 1)
    assert result.tasks["on_no_drift"][0] == "skipped"
    assert result.xcom[("on_drift", "return_value")] == "drift"
    assert result.xcom[(CHECK, "drift_summary")]["drifted_columns"] == list(DRIFTED_FEATURES)


# -- MLflow -----------------------------------------------------------------------------------


# MLflow 3.17's SQLite store declares a relationship with a loader strategy SQLAlchemy deprecates:
# a warning when the store loads, and warnings are errors in the Airflow tests.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_report_is_logged_to_mlflow_when_a_tracking_uri_is_given(
    run_drift_dag: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    result = run_drift_dag(
        "guardflow_test_drift_warn",
        data.drifted,
        mlflow_tracking_uri=uri,
        mlflow_experiment="drift-tests",
    )

    run_id = result.xcom[(CHECK, "return_value")]["mlflow_run_id"]
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.data.metrics["drift.drifted_share"] == pytest.approx(0.75)


# -- the "Drift report" extra link ------------------------------------------------------------


def test_html_report_is_the_tasks_drift_report_link(
    run_drift_dag: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    html = tmp_path / "report.html"

    result = run_drift_dag("guardflow_test_drift_html", data.drifted, html_uri=str(html))

    assert result.tasks[CHECK] == ("success", 1)
    assert html.is_file()
    assert result.xcom[(CHECK, "drift_summary")]["html_uri"] == str(html)
    assert result.xcom[(CHECK, "_link_DriftReportLink")] == html.as_uri()


def test_the_api_server_serves_the_link_from_the_serialized_dag(
    run_drift_dag: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    # What GET .../taskInstances/{task}/links does: the serialized operator, the TI, XCom.
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    html = tmp_path / "report.html"
    run_drift_dag("guardflow_test_drift_html", data.drifted, html_uri=str(html))

    with create_session() as session:
        dag = SerializedDagModel.get_dag("guardflow_test_drift_html", session=session)
        ti = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == "guardflow_test_drift_html")
            .order_by(TaskInstance.start_date.desc())
        ).first()
        assert dag is not None and ti is not None
        task = dag.get_task(CHECK)
        assert task.extra_links == ["Drift report"]
        assert task.get_extra_links(ti, "Drift report") == html.as_uri()


def test_link_is_empty_when_no_html_report_was_written(
    run_drift_dag: Callable[..., Any], data: Data
) -> None:
    result = run_drift_dag("guardflow_test_drift_warn", data.current)

    assert result.xcom[(CHECK, "drift_summary")]["html_uri"] is None
    assert result.xcom[(CHECK, "_link_DriftReportLink")] == ""


def test_provider_registers_the_link_and_the_operators() -> None:
    from airflow.providers_manager import ProvidersManager

    from guardflow_airflow.get_provider_info import get_provider_info

    manager = ProvidersManager()
    modules = [m for op in get_provider_info()["operators"] for m in op["python-modules"]]

    assert "guardflow_airflow.links.DriftReportLink" in manager.extra_links_class_names
    assert "guardflow_airflow.operators.drift" in modules
    assert "guardflow_airflow.operators.quality" in modules
