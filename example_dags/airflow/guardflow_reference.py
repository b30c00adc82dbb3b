"""guardflow reference workflow on Airflow: ingest, mask PII, check, score, review, deliver.

The reference workflow is::

    ingest -> mask PII -> quality + drift checks -> inference on a model server
           -> human approval gate (only what needs a human) -> deliver -> audit trail

As tasks::

    ingest -> mask_pii -> check_quality ----------> score -> label_predictions -> review
                       -> check_drift --(no drift)-> score            (approve) -> deliver
                                      --(drift)--> alert_drift        (reject)  -> quarantine

- ``mask_pii`` masks the landed file before any other step reads it, under
  ``example_dags/policies/pii.yaml``: the ``email`` column becomes a keyed hash (the key is read
  from Vault, ``vault://secret/guardflow/pii#hash_key``) and e-mail addresses, phone numbers and
  card numbers in the free-text ``note`` column become ``<TYPE>``; its report (counts only) goes
  to XCom;
- ``check_quality`` validates the landed file against ``example_dags/policies/sample_suite.yaml``
  and fails the run when an expectation fails (nothing is scored from bad data);
- ``check_drift`` compares it with the reference sample under
  ``example_dags/policies/drift.yaml`` and follows ``score`` when the data did not drift, or
  ``alert_drift`` when it did: the alert names the drifted columns, and scoring is skipped;
- ``score`` sends the rows to the model server with a bearer token read from Vault at run time
  (``token="vault://secret/guardflow/inference#token"`` through the ``vault_default`` connection):
  the token is never in the DAG file, a template field, XCom or the logs;
- ``label_predictions`` turns each score into a label and a confidence (distance from the
  decision boundary) and writes them as review items;
- ``review`` is a deferrable approval gate under ``example_dags/policies/gate.yaml``: only items
  whose confidence is under 0.5 go to a human (the rest pass), reviewers of the ``reviewers``
  group decide by signed link, on the review page (``guardflow gates serve``) or with the CLI
  (``guardflow gates approve <id>``), and may correct an item's label; while it waits, the task
  holds no worker slot. ``approve`` continues to ``deliver``, ``reject`` to ``quarantine``.
  Links are signed with a key read from Vault (``vault://secret/guardflow/gates#signing_key``);
  the gate store is ``$GUARDFLOW_GATES_DB`` (SQLite by default).

Each step passes file URIs on, never data, and writes an audit event (``$GUARDFLOW_AUDIT_PATH``).
Files go under ``$GUARDFLOW_DEMO_DIR`` (default ``<tmp>/guardflow-demo``), one folder per DAG run.
Connections (``make demo`` sets both)::

    export AIRFLOW_CONN_GUARDFLOW_INFERENCE_DEFAULT='{"conn_type": "guardflow_inference",
        "host": "http://127.0.0.1:5001", "extra": {"protocol": "mlflow"}}'
    # Vault holds secret/guardflow/inference (key token) and secret/guardflow/pii (key hash_key)
    export AIRFLOW_CONN_VAULT_DEFAULT='{"conn_type": "vault", "host": "127.0.0.1",
        "port": 8200, "password": "<vault token>", "extra": {"auth_type": "token"}}'
    python example_dags/airflow/guardflow_reference.py [--simulate-drift]

``--simulate-drift`` (the ``simulate_drift`` param) lands a sample whose features moved, to show
the drift branch. The sample features (``f0``..``f3``) are what the demo model expects: the tiny
model served by ``make demo`` and by the ``mlflow_model_server`` fixture of ``guardflow.testing``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, task

from guardflow.samples import (
    FEATURES,
    KEY_COLUMN,
    demo_dir,
    write_landed_csv,
    write_reference_csv,
    write_review_items,
)
from guardflow_airflow.operators.drift import DriftCheckBranchOperator
from guardflow_airflow.operators.gates import GateBranchOperator
from guardflow_airflow.operators.inference import InferenceOperator
from guardflow_airflow.operators.pii import PIIMaskOperator
from guardflow_airflow.operators.quality import DataQualityOperator

POLICIES = Path(__file__).resolve().parents[1] / "policies"
QUALITY_SUITE = POLICIES / "sample_suite.yaml"
DRIFT_POLICY = POLICIES / "drift.yaml"
PII_POLICY = POLICIES / "pii.yaml"
GATE_POLICY = POLICIES / "gate.yaml"
# KV v2 mount "secret", path "guardflow/inference", key "token"; resolved when `score` runs.
INFERENCE_TOKEN = "vault://secret/guardflow/inference#token"


def run_folder(run_id: str) -> Path:
    """Return this DAG run's folder; run ids carry ``:`` and ``+``, kept out of file names."""
    return demo_dir() / "airflow" / re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)


@task(multiple_outputs=True)
def ingest(run_id: str | None = None, params: dict[str, Any] | None = None) -> dict[str, str]:
    """Land this run's sample (and the reference sample, once) and name the files next steps write.

    Returns:
        ``landed_uri`` (personal data: read only by ``mask_pii``), ``input_uri`` (the masked
        copy every later step reads), ``reference_uri``, ``output_uri``, ``dead_letter_uri``
        and ``review_items_uri``.
    """
    folder = run_folder(run_id or "manual")
    landed = write_landed_csv(
        folder / "landed.csv", drift=bool((params or {}).get("simulate_drift"))
    )
    # The data the model was validated on; in production a versioned dataset (or a saved
    # guardflow.drift reference profile) rather than a file written here.
    reference = demo_dir() / "reference" / "features.csv"
    if not reference.exists():
        write_reference_csv(reference)
    return {
        "landed_uri": str(landed),
        "input_uri": str(folder / "input.csv"),
        "reference_uri": str(reference),
        "output_uri": str(folder / "scores.parquet"),
        "dead_letter_uri": str(folder / "scores.dead_letter.jsonl"),
        "review_items_uri": str(folder / "review_items.jsonl"),
    }


@task
def label_predictions(summary: dict[str, Any], items_uri: str) -> str:
    """Label each scored row with a confidence and write the review items (a file, not XCom).

    Returns:
        The review items' URI, which the approval gate reads.
    """
    return str(write_review_items(summary["output_uri"], items_uri))


@task
def quarantine(ti: Any = None) -> dict[str, Any]:
    """Keep rejected results out of delivery: reviewers said no, so nothing is published.

    Returns:
        The gate's outcome (ids, names and counts).
    """
    import logging

    outcome = ti.xcom_pull(task_ids="review", key="gate_outcome") if ti else {}
    logging.getLogger("airflow.task").warning(
        "Quarantined: reviewers rejected the predictions (gate %s); nothing delivered",
        (outcome or {}).get("gate_id"),
    )
    return outcome or {}


@task
def alert_drift(ti: Any = None) -> dict[str, Any]:
    """Alert on drifted input and stop: ``check_drift`` skipped scoring and delivery.

    A real pipeline would page the model owner here (Slack, e-mail, an incident); the demo
    logs a warning naming the drifted columns.

    Returns:
        The drift verdict: drifted columns and share (statistics, never data values).
    """
    import logging

    drift = ti.xcom_pull(task_ids="check_drift", key="drift_summary") if ti else {}
    alert = {
        "drifted_columns": drift.get("drifted_columns", []),
        "drifted_share": drift.get("drifted_share"),
        "reference_fingerprint": drift.get("reference_fingerprint"),
    }
    logging.getLogger("airflow.task").warning(
        "ALERT: input drifted from the reference in %s (share %.2f); scoring skipped",
        ", ".join(alert["drifted_columns"]) or "no column",
        alert["drifted_share"] or 0.0,
    )
    return alert


@task
def deliver(summary: dict[str, Any]) -> dict[str, Any]:
    """Report where the results went (the step a real pipeline would publish from).

    Returns:
        The scoring summary, unchanged, for whatever runs downstream.
    """
    import logging

    log = logging.getLogger("airflow.task")
    log.info(
        "Results: %d of %d rows scored by %s (version %s) -> %s",
        summary["succeeded"],
        summary["rows"],
        summary.get("model_name") or "the model",
        summary.get("model_version") or "-",
        summary["output_uri"],
    )
    if summary.get("failed"):
        log.warning("%d rows failed -> %s", summary["failed"], summary["dead_letter_uri"])
    return summary


@dag(
    dag_id="guardflow_reference",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["guardflow", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
    params={
        "simulate_drift": Param(
            False, type="boolean", description="Land a drifted sample to show the drift branch."
        )
    },
    doc_md=__doc__,
)
def guardflow_reference() -> None:
    """Ingest -> mask PII -> checks -> score (token from Vault) -> review gate -> deliver."""
    files = ingest()
    mask_pii = PIIMaskOperator(
        task_id="mask_pii",
        input_uri=files["landed_uri"],
        output_uri=files["input_uri"],
        policy=str(PII_POLICY),
        vault_conn_id="vault_default",
    )
    check_quality = DataQualityOperator(
        task_id="check_quality",
        data_uri=files["input_uri"],
        suite=str(QUALITY_SUITE),
        on_failure="fail",
    )
    check_drift = DriftCheckBranchOperator(
        task_id="check_drift",
        reference_uri=files["reference_uri"],
        current_uri=files["input_uri"],
        config=str(DRIFT_POLICY),
        follow_task_ids_if_drift="alert_drift",
        follow_task_ids_if_no_drift="score",
    )
    score = InferenceOperator(
        task_id="score",
        input_uri=files["input_uri"],
        output_uri=files["output_uri"],
        dead_letter_uri=files["dead_letter_uri"],
        key_column=KEY_COLUMN,
        input_columns=list(FEATURES),
        batch_size=50,
        token=INFERENCE_TOKEN,
        vault_conn_id="vault_default",
    )
    items = label_predictions(score.output, files["review_items_uri"])
    review = GateBranchOperator(
        task_id="review",
        subject="Review low-confidence predictions",
        body=(
            "The model is unsure of these predictions (confidence under 0.5). Check each "
            "item's features and label, correct labels that are wrong, then **approve** to "
            "deliver the results or **reject** to quarantine them."
        ),
        context={"model": "guardflow demo model", "dag_run": "{{ run_id }}"},
        items=items,
        policy=str(GATE_POLICY),
        vault_conn_id="vault_default",
        options_mapping={"approve": "deliver", "reject": "quarantine"},
    )
    mask_pii >> [check_quality, check_drift]
    check_quality >> score
    check_drift >> [alert_drift(), score]
    review >> [deliver(score.output), quarantine()]


reference_dag = guardflow_reference()


def _print_outcome(dag_run: Any) -> None:
    """Print which branch the run took: what ``make demo`` shows."""
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    branch = "alert_drift" if states.get("alert_drift") == "success" else "score"
    print(f"Drift branch taken: {branch}")
    if states.get("review") == "success":
        decided = "deliver" if states.get("deliver") == "success" else "quarantine"
        print(f"Review gate branch taken: {decided}")
    print("Task states: " + ", ".join(f"{t}={s}" for t, s in sorted(states.items())))


if __name__ == "__main__":
    import sys

    drift = "--simulate-drift" in sys.argv[1:]
    _print_outcome(reference_dag.test(run_conf={"simulate_drift": drift}))
