"""DataQualityOperator and DataQualityBranchOperator run by Airflow itself (``dag.test()``).

The DAGs are in ``tests/airflow/dags/quality_checks.py``; their suite expects the reference
workflow's sample: unique, non-null keys and features within [-10, 10]. The invalid dataset is
that sample with one duplicated key and two out-of-range values.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from guardflow.samples import write_sample_csv

TEST_DAGS = Path(__file__).resolve().parent / "dags" / "quality_checks.py"
CHECK = "check_quality"
# Planted in the invalid dataset; they must never reach XCom or the logs.
OUT_OF_RANGE = ("4242.4242", "-9191.9191")
DUPLICATED_KEY = "row-00007"

pytestmark = [
    pytest.mark.timeout(300),
    # Raised while great_expectations imports (warnings are errors in the Airflow tests).
    pytest.mark.filterwarnings("ignore:module 'sre_(constants|parse)' is deprecated"),
]


@dataclass(frozen=True)
class Data:
    valid: Path
    invalid: Path


@pytest.fixture
def data(tmp_path: Path) -> Data:
    valid = write_sample_csv(tmp_path / "valid.csv")
    with valid.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows[3]["f1"], rows[4]["f2"] = OUT_OF_RANGE
    rows[8]["row_id"] = DUPLICATED_KEY
    invalid = tmp_path / "invalid.csv"
    with invalid.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Data(valid=valid, invalid=invalid)


@pytest.fixture
def run_quality_dag(
    load_dag: Callable[[Path, str], Any], run_summary: Callable[[Any], Any]
) -> Callable[..., Any]:
    """Return ``run(dag_id, data_uri, **conf) -> RunResult``."""

    def run(dag_id: str, data_uri: Path, **conf: Any) -> Any:
        dag = load_dag(TEST_DAGS, dag_id)
        return run_summary(dag.test(run_conf={"data_uri": str(data_uri), **conf}))

    return run


def test_valid_data_passes_and_the_summary_is_returned(
    run_quality_dag: Callable[..., Any], data: Data
) -> None:
    result = run_quality_dag("guardflow_test_quality_fail", data.valid)

    assert result.state == "success"
    assert result.tasks == {CHECK: ("success", 1), "after": ("success", 1)}
    summary = result.xcom[(CHECK, "return_value")]
    assert summary == result.xcom[(CHECK, "quality_summary")]
    assert (summary["suite_name"], summary["success"]) == ("sample", True)
    assert (summary["evaluated"], summary["successful"], summary["rows"]) == (6, 6, 250)


def test_summary_names_failures_but_holds_no_data_values(
    run_quality_dag: Callable[..., Any], data: Data, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_quality_dag("guardflow_test_quality_warn", data.invalid)

    summary = result.xcom[(CHECK, "quality_summary")]
    failed = {(f["type"], f["column"]): f["unexpected_count"] for f in summary["failed"]}
    assert failed == {
        ("expect_column_values_to_be_unique", "row_id"): 2,
        ("expect_column_values_to_be_between", "f1"): 1,
        ("expect_column_values_to_be_between", "f2"): 1,
    }
    seen = repr(result.xcom) + "".join(capfd.readouterr())
    for value in (*OUT_OF_RANGE, DUPLICATED_KEY):
        assert value not in seen


def test_fail_policy_fails_the_task_without_retry_naming_the_failures(
    run_quality_dag: Callable[..., Any], data: Data, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_quality_dag("guardflow_test_quality_fail", data.invalid)

    log = "".join(capfd.readouterr())
    assert result.state == "failed"
    assert result.tasks[CHECK] == ("failed", 1)
    assert result.tasks["after"][0] == "upstream_failed"
    assert "AirflowFailException: DataQualityError" in log
    assert "expect_column_values_to_be_between(f1)" in log
    assert result.xcom[(CHECK, "quality_summary")]["success"] is False
    assert (CHECK, "return_value") not in result.xcom


def test_warn_policy_logs_a_warning_and_succeeds(
    run_quality_dag: Callable[..., Any], data: Data, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_quality_dag("guardflow_test_quality_warn", data.invalid)

    log = "".join(capfd.readouterr())
    assert result.tasks == {CHECK: ("success", 1), "after": ("success", 1)}
    assert "on_failure='warn'" in log and "expect_column_values_to_be_unique(row_id)" in log
    assert result.xcom[(CHECK, "return_value")]["success"] is False


def test_skip_policy_skips_the_task_and_its_downstream(
    run_quality_dag: Callable[..., Any], data: Data
) -> None:
    result = run_quality_dag("guardflow_test_quality_skip", data.invalid)

    assert result.state == "success"
    assert result.tasks[CHECK][0] == "skipped"
    assert result.tasks["after"][0] == "skipped"
    assert result.xcom[(CHECK, "quality_summary")]["unsuccessful"] == 3


def test_missing_data_fails_whatever_the_policy(
    run_quality_dag: Callable[..., Any], tmp_path: Path
) -> None:
    result = run_quality_dag("guardflow_test_quality_skip", tmp_path / "missing.csv")

    assert result.tasks[CHECK] == ("failed", 1)
    assert result.tasks["after"][0] == "upstream_failed"


def test_branch_follows_the_passed_tasks_for_valid_data(
    run_quality_dag: Callable[..., Any], data: Data
) -> None:
    result = run_quality_dag("guardflow_test_quality_branch", data.valid)

    assert result.state == "success"
    assert result.tasks["on_passed"] == ("success", 1)
    assert result.tasks["on_failed"][0] == "skipped"


def test_branch_follows_the_failed_tasks_for_invalid_data(
    run_quality_dag: Callable[..., Any], data: Data
) -> None:
    result = run_quality_dag("guardflow_test_quality_branch", data.invalid)

    assert result.state == "success"
    assert result.tasks[CHECK] == ("success", 1)
    assert result.tasks["on_failed"] == ("success", 1)
    assert result.tasks["on_passed"][0] == "skipped"
    assert result.xcom[(CHECK, "quality_summary")]["success"] is False


def test_audit_event_carries_the_airflow_identity(
    run_quality_dag: Callable[..., Any], data: Data, airflow_home: Path
) -> None:
    from guardflow.audit import JsonlAuditSink

    run_quality_dag("guardflow_test_quality_fail", data.valid)

    events = JsonlAuditSink(airflow_home / "audit.jsonl").read()
    ident = [e for e in events if e.identity.pipeline == "guardflow_test_quality_fail"][-1].identity
    assert (ident.orchestrator, ident.task_id) == ("airflow", CHECK)


# MLflow 3.17's SQLite store uses a deprecated SQLAlchemy loader (see test_drift_operators.py).
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_summary_is_logged_to_mlflow_when_a_tracking_uri_is_given(
    run_quality_dag: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    result = run_quality_dag("guardflow_test_quality_warn", data.invalid, mlflow_tracking_uri=uri)

    run_id = result.xcom[(CHECK, "return_value")]["mlflow_run_id"]
    metrics = MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics
    assert (metrics["quality.success"], metrics["quality.unsuccessful"]) == (0.0, 3.0)


def test_unknown_policy_is_refused_when_the_dag_is_parsed() -> None:
    from guardflow_airflow.operators.quality import DataQualityOperator

    with pytest.raises(ValueError, match="on_failure must be one of"):
        DataQualityOperator(task_id="x", data_uri="d.csv", suite={}, on_failure="ignore")
