"""guardflow reference workflow on Prefect: ingest a sample dataset, score it, deliver the results.

The full reference workflow is::

    ingest -> mask PII -> quality + drift checks -> inference on a model server
           -> human approval gate -> deliver -> audit trail of every step

This first version runs ``ingest -> score -> deliver``. Each step is one task that passes file
URIs on, never data, so later steps slot in between ``ingest`` and ``score`` (masking, checks) and
between ``score`` and ``deliver`` (the approval gate) by rewiring the URIs in
:func:`guardflow_reference`. Every guardflow step writes an audit event (``$GUARDFLOW_AUDIT_PATH``).

Files go under ``$GUARDFLOW_DEMO_DIR`` (default ``<tmp>/guardflow-demo``), one folder per flow
run. The model server is a saved ``InferenceEndpoint`` block when a block name is given (the
``endpoint_block`` parameter or ``$GUARDFLOW_ENDPOINT_BLOCK``), else the MLflow scoring server at
``$GUARDFLOW_ENDPOINT_URL`` (default ``http://127.0.0.1:5001``)::

    GUARDFLOW_ENDPOINT_URL=http://127.0.0.1:5001 python example_dags/prefect/guardflow_reference.py

The sample is the same as the Airflow example's: features ``f0``..``f3``, what the demo model
expects (the tiny model served by ``make demo`` and by the ``mlflow_model_server`` fixture of
``guardflow.testing``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from guardflow.samples import FEATURES, KEY_COLUMN, demo_dir, write_sample_csv
from prefect_guardflow.inference import InferenceEndpoint, run_inference

ENDPOINT_URL_ENV = "GUARDFLOW_ENDPOINT_URL"
ENDPOINT_BLOCK_ENV = "GUARDFLOW_ENDPOINT_BLOCK"
DEFAULT_ENDPOINT_URL = "http://127.0.0.1:5001"


def endpoint(block_name: str | None = None) -> InferenceEndpoint:
    """Return the model server: a saved block when named, else one built from the environment."""
    name = block_name or os.environ.get(ENDPOINT_BLOCK_ENV)
    if name:
        return InferenceEndpoint.load(name)
    url = os.environ.get(ENDPOINT_URL_ENV) or DEFAULT_ENDPOINT_URL
    return InferenceEndpoint(url=url, protocol="mlflow", batch_size=50, concurrency=2)


# Steps pass URIs, never data, and persist nothing: results would be pickled into Prefect storage.
@task(persist_result=False, cache_policy=NONE)
def ingest(folder: str) -> dict[str, str]:
    """Land the sample dataset for this run and name the files the next steps write.

    Returns:
        ``input_uri``, ``output_uri`` and ``dead_letter_uri`` for this run.
    """
    source = Path(folder) / "input.csv"
    write_sample_csv(source)
    return {
        "input_uri": str(source),
        "output_uri": str(Path(folder) / "scores.parquet"),
        "dead_letter_uri": str(Path(folder) / "scores.dead_letter.jsonl"),
    }


@task(persist_result=False, cache_policy=NONE)
def deliver(summary: dict[str, Any]) -> dict[str, Any]:
    """Report where the results went (the step a real pipeline would publish from).

    Returns:
        The scoring summary, unchanged, for whatever runs downstream.
    """
    log = get_run_logger()
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


@flow(name="guardflow-reference", persist_result=False)
def guardflow_reference(endpoint_block: str | None = None) -> dict[str, Any]:
    """Ingest -> score on the model server -> deliver.

    Args:
        endpoint_block: Name of a saved ``InferenceEndpoint`` block to score on.

    Returns:
        The scoring summary (rows, failures, output URI, model version).
    """
    files = ingest(str(demo_dir() / "prefect" / str(flow_run.id or "manual")))
    summary = run_inference(
        files["input_uri"],
        files["output_uri"],
        endpoint(endpoint_block),
        key_column=KEY_COLUMN,
        input_columns=list(FEATURES),
        dead_letter=files["dead_letter_uri"],
    )
    return deliver(summary)


if __name__ == "__main__":
    result = guardflow_reference()
    print(f"Scored {result['succeeded']} of {result['rows']} rows -> {result['output_uri']}")
    if result["failed"]:
        print(f"{result['failed']} rows failed -> {result['dead_letter_uri']}")
