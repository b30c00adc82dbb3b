"""guardflow reference workflow on Airflow: ingest a sample dataset, score it, deliver the results.

The full reference workflow is::

    ingest -> mask PII -> quality + drift checks -> inference on a model server
           -> human approval gate -> deliver -> audit trail of every step

This first version runs ``ingest -> score -> deliver``. Each step is one task that passes file
URIs on, never data, so later steps slot in between ``ingest`` and ``score`` (masking, checks) and
between ``score`` and ``deliver`` (the approval gate) by rewiring the URIs in
:func:`guardflow_reference`. Every guardflow step writes an audit event (``$GUARDFLOW_AUDIT_PATH``).

Files go under ``$GUARDFLOW_DEMO_DIR`` (default ``<tmp>/guardflow-demo``), one folder per DAG run.
The model server comes from the ``guardflow_inference_default`` connection, e.g.::

    export AIRFLOW_CONN_GUARDFLOW_INFERENCE_DEFAULT='{"conn_type": "guardflow_inference",
        "host": "http://127.0.0.1:5001", "extra": {"protocol": "mlflow"}}'
    python example_dags/airflow/guardflow_reference.py

The sample features (``f0``..``f3``) are what the demo model expects: the tiny model served by
``make demo`` and by the ``mlflow_model_server`` fixture of ``guardflow.testing``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

from guardflow.samples import FEATURES, KEY_COLUMN, demo_dir, write_sample_csv
from guardflow_airflow.operators.inference import InferenceOperator


def run_folder(run_id: str) -> Path:
    """Return this DAG run's folder; run ids carry ``:`` and ``+``, kept out of file names."""
    return demo_dir() / "airflow" / re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)


@task(multiple_outputs=True)
def ingest(run_id: str | None = None) -> dict[str, str]:
    """Land the sample dataset for this run and name the files the next steps write.

    Returns:
        ``input_uri``, ``output_uri`` and ``dead_letter_uri`` for this run.
    """
    folder = run_folder(run_id or "manual")
    source = folder / "input.csv"
    write_sample_csv(source)
    return {
        "input_uri": str(source),
        "output_uri": str(folder / "scores.parquet"),
        "dead_letter_uri": str(folder / "scores.dead_letter.jsonl"),
    }


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
    doc_md=__doc__,
)
def guardflow_reference() -> None:
    """Ingest -> score on the model server -> deliver."""
    files = ingest()
    score = InferenceOperator(
        task_id="score",
        input_uri=files["input_uri"],
        output_uri=files["output_uri"],
        dead_letter_uri=files["dead_letter_uri"],
        key_column=KEY_COLUMN,
        input_columns=list(FEATURES),
        batch_size=50,
    )
    deliver(score.output)


reference_dag = guardflow_reference()


if __name__ == "__main__":
    reference_dag.test()
