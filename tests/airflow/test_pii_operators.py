"""PIIMaskOperator and PIIScanOperator run by Airflow itself (``dag.test()``).

The DAGs are in ``tests/airflow/dags/pii_checks.py``. After each run the planted PII is looked
for everywhere a task could leave it: the console (the task log of ``dag.test()``), captured log
records, XCom, every file under AIRFLOW_HOME (task logs, the metadata database with XCom and
rendered fields, the audit trail) and every file the run wrote; only the input may hold it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parent / "dags" / "pii_checks.py"
MASK = "mask_pii"
SCAN = "scan_pii"
EMAIL = "jane.q.doe@example.org"
OTHER_EMAIL = "bob.k.smith@example.net"
IP = "203.0.113.77"
PLANTED = (EMAIL, OTHER_EMAIL, IP)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A CSV with e-mail addresses in ``email`` and an IP address and an e-mail in ``notes``."""
    path = tmp_path / "input" / "tickets.csv"
    path.parent.mkdir()
    rows = [
        {"row_id": "1", "email": EMAIL, "notes": f"login from {IP}"},
        {"row_id": "2", "email": OTHER_EMAIL, "notes": "printer jammed"},
        {"row_id": "3", "email": EMAIL, "notes": f"reply to {OTHER_EMAIL}"},
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["row_id", "email", "notes"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def run_dag(
    load_dag: Callable[[Path, str], Any], run_summary: Callable[[Any], Any]
) -> Callable[..., Any]:
    """Return ``run(dag_id, **conf) -> RunResult``."""

    def run(dag_id: str, **conf: str) -> Any:
        return run_summary(load_dag(DAGS, dag_id).test(run_conf=conf))

    return run


@pytest.fixture
def leaks(
    airflow_home: Path,
    tmp_path: Path,
    source: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Callable[[Any], list[str]]:
    """Return ``find(result)``: where the planted PII shows up, other than the input file."""

    def find(result: Any) -> list[str]:
        places = {"console": "".join(capfd.readouterr()), "caplog": caplog.text}
        places["xcom"] = repr(result.xcom)
        for root in (airflow_home, tmp_path):
            for path in root.rglob("*"):
                if path.is_file() and path != source:
                    places[str(path)] = path.read_bytes().decode("utf-8", "replace")
        return [where for where, text in places.items() for v in PLANTED if v in text]

    return find


# -- masking ---------------------------------------------------------------------------------


def test_mask_writes_the_masked_file_and_the_report_to_xcom(
    run_dag: Callable[..., Any], source: Path, tmp_path: Path
) -> None:
    output = tmp_path / "clean.parquet"

    result = run_dag("guardflow_test_pii_mask", input_uri=str(source), output_uri=str(output))

    assert result.tasks == {MASK: ("success", 1), "after": ("success", 1)}
    report = result.xcom[(MASK, "return_value")]
    assert report == result.xcom[(MASK, "pii_report")]
    assert report["counts"]["email"] == {"EMAIL_ADDRESS": 3}
    assert report["counts"]["notes"] == {"IP_ADDRESS": 1, "EMAIL_ADDRESS": 1}
    assert report["rows_scanned"] == 3
    assert output.is_file()


def test_planted_pii_is_nowhere_but_in_the_input(
    run_dag: Callable[..., Any],
    source: Path,
    tmp_path: Path,
    leaks: Callable[[Any], list[str]],
) -> None:
    result = run_dag(
        "guardflow_test_pii_mask", input_uri=str(source), output_uri=str(tmp_path / "c.jsonl")
    )

    assert result.tasks[MASK] == ("success", 1)
    assert leaks(result) == []


def test_the_masked_output_passes_a_strict_scan(
    run_dag: Callable[..., Any], source: Path, tmp_path: Path
) -> None:
    output = tmp_path / "clean.csv"
    run_dag("guardflow_test_pii_mask", input_uri=str(source), output_uri=str(output))

    result = run_dag("guardflow_test_pii_scan_fail", input_uri=str(output))

    assert result.tasks == {SCAN: ("success", 1), "after": ("success", 1)}
    violations = result.xcom[(SCAN, "pii_report")]["violations"]
    assert not any(n for types in violations.values() for n in types.values())


def test_a_missing_input_fails_the_mask_task_without_retry(
    run_dag: Callable[..., Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(
        "guardflow_test_pii_mask",
        input_uri=str(tmp_path / "missing.csv"),
        output_uri=str(tmp_path / "out.csv"),
    )

    assert result.tasks[MASK] == ("failed", 1)
    assert result.tasks["after"][0] == "upstream_failed"
    assert "AirflowFailException" in "".join(capfd.readouterr())


def test_tokenize_goes_through_the_vault_connection(
    run_dag: Callable[..., Any],
    source: Path,
    tmp_path: Path,
    vault_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    leaks: Callable[[Any], list[str]],
) -> None:
    import pandas as pd

    vault_server.ensure_ready()
    token = vault_server.create_token(["root"], ttl="1h")
    monkeypatch.setenv(
        "AIRFLOW_CONN_GUARDFLOW_TEST_PII_VAULT",
        f"vault://:{token}@127.0.0.1:{vault_server.port}/secret?auth_type=token",
    )
    output = tmp_path / "tokens.parquet"

    result = run_dag(
        "guardflow_test_pii_mask_tokenize", input_uri=str(source), output_uri=str(output)
    )

    assert result.tasks[MASK] == ("success", 1)
    tokens = list(pd.read_parquet(output)["email"])
    assert tokens[0] == tokens[2] != tokens[1]
    assert leaks(result) == []


# -- scanning --------------------------------------------------------------------------------


def test_scan_fails_the_task_at_once_naming_the_column(
    run_dag: Callable[..., Any], source: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_dag("guardflow_test_pii_scan_fail", input_uri=str(source))

    log = "".join(capfd.readouterr())
    assert result.state == "failed"
    assert result.tasks[SCAN] == ("failed", 1)
    assert result.tasks["after"][0] == "upstream_failed"
    assert "AirflowFailException" in log and "PIIFoundError" in log
    assert "notes: EMAIL_ADDRESS=1, IP_ADDRESS=1" in log and "email:" not in log
    report = result.xcom[(SCAN, "pii_report")]
    assert report["violations"]["notes"] == {"EMAIL_ADDRESS": 1, "IP_ADDRESS": 1}
    assert not any(report["violations"].get("email", {}).values())
    assert (SCAN, "return_value") not in result.xcom


def test_scan_warn_logs_a_warning_and_succeeds(
    run_dag: Callable[..., Any], source: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_dag("guardflow_test_pii_scan_warn", input_uri=str(source))

    log = "".join(capfd.readouterr())
    assert result.tasks == {SCAN: ("success", 1), "after": ("success", 1)}
    assert "on_failure='warn'" in log and "notes: EMAIL_ADDRESS=1, IP_ADDRESS=1" in log
    violations = result.xcom[(SCAN, "return_value")]["violations"]
    assert violations["notes"] == {"EMAIL_ADDRESS": 1, "IP_ADDRESS": 1}


def test_scan_leaks_no_pii(
    run_dag: Callable[..., Any], source: Path, leaks: Callable[[Any], list[str]]
) -> None:
    result = run_dag("guardflow_test_pii_scan_warn", input_uri=str(source))

    assert leaks(result) == []


def test_scan_audit_event_carries_the_airflow_identity(
    run_dag: Callable[..., Any], source: Path, airflow_home: Path
) -> None:
    from guardflow.audit import JsonlAuditSink

    run_dag("guardflow_test_pii_scan_warn", input_uri=str(source))

    events = [
        e for e in JsonlAuditSink(airflow_home / "audit.jsonl").read() if e.step_kind == "pii"
    ]
    ident = events[-1].identity
    assert (ident.orchestrator, ident.pipeline, ident.task_id) == (
        "airflow",
        "guardflow_test_pii_scan_warn",
        SCAN,
    )


# -- parse time ------------------------------------------------------------------------------


def test_workers_mask_and_scan_as_one_process_does(
    run_dag: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    airflow_home: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from guardflow.pii import mask_file
    from guardflow.pii._parallel import MIN_SLICE_ROWS, _Worker

    policy = {  # the DAG's policy
        "columns": {"email": {"entity": "EMAIL_ADDRESS", "action": "replace"}},
        "free_text_columns": ["notes"],
    }

    big = tmp_path / "big.csv"
    with big.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["row_id", "email", "notes"])
        writer.writeheader()
        for i in range(2 * MIN_SLICE_ROWS + 100):  # one batch, two slices
            note = f"login from {IP}" if i % 3 else f"reply to {OTHER_EMAIL} re #{i}"
            writer.writerow({"row_id": str(i), "email": EMAIL, "notes": note})
    sent: list[str] = []
    real_send = _Worker.send
    monkeypatch.setattr(_Worker, "send", lambda w, r: (sent.append(r[0]), real_send(w, r))[1])
    output = tmp_path / "clean.csv"

    result = run_dag("guardflow_test_pii_workers", input_uri=str(big), output_uri=str(output))

    assert result.tasks == {MASK: ("success", 1), SCAN: ("success", 1)}
    assert sent == ["arrow"] * 3  # the mask task: notes; the scan task: email, then notes
    serial = tmp_path / "serial.csv"
    mask_file(big, serial, policy)
    assert output.read_bytes() == serial.read_bytes()
    assert result.xcom[(MASK, "pii_report")]["counts"]["notes"] == {
        "IP_ADDRESS": 2 * (2 * MIN_SLICE_ROWS + 100) // 3,
        "EMAIL_ADDRESS": (2 * MIN_SLICE_ROWS + 100 + 2) // 3,
    }
    console = "".join(capfd.readouterr())  # the worker processes write to these too
    logs = [p.read_text("utf-8", "replace") for p in airflow_home.rglob("*.log")]
    for planted in PLANTED:
        assert planted not in console and planted not in repr(result.xcom)
        assert not [text for text in logs if planted in text]


def test_unknown_on_found_is_refused_when_the_dag_is_parsed() -> None:
    from guardflow_airflow.operators.pii import PIIScanOperator

    with pytest.raises(ValueError, match="on_found must be"):
        PIIScanOperator(task_id="x", input_uri="in.csv", policy={}, on_found="skip")  # type: ignore[arg-type]


def test_uris_are_templated_and_the_policy_is_not() -> None:
    from guardflow_airflow.operators.pii import PIIMaskOperator, PIIScanOperator

    assert set(PIIMaskOperator.template_fields) == {"input_uri", "output_uri", "audit_path"}
    assert set(PIIScanOperator.template_fields) == {"input_uri", "audit_path"}


def test_provider_registers_the_pii_operators() -> None:
    from guardflow_airflow.get_provider_info import get_provider_info

    modules = [m for op in get_provider_info()["operators"] for m in op["python-modules"]]

    assert "guardflow_airflow.operators.pii" in modules
