"""guardflow reference workflow on Prefect: ingest, mask PII, check, score, review, deliver.

The reference workflow is::

    ingest -> mask PII -> quality + drift checks -> inference on a model server
           -> human approval gate (only what needs a human) -> deliver -> audit trail

As tasks::

    ingest -> mask_pii -> validate_data -> check_drift --(no drift)--> read_vault_secret
        -> run_inference -> label_predictions -> request_approval --(approved)--> deliver
                                                                  --(rejected)--> quarantine
                                       --(drift)-----> alert_drift (and stop)

- ``mask_pii`` masks the landed file before any other step reads it, under
  ``example_dags/policies/pii.yaml``: the ``email`` column becomes a keyed hash (key read from
  Vault, ``vault://secret/guardflow/pii#hash_key``), and e-mail addresses, phone numbers and card
  numbers in the free-text ``note`` column become ``<TYPE>``;
- ``validate_data`` checks the masked file against ``example_dags/policies/sample_suite.yaml``
  and fails the run when an expectation fails (nothing is scored from bad data);
- ``check_drift`` compares it with the reference sample under ``example_dags/policies/drift.yaml``
  (``on_failure="skip"``: drift is not a failure, the flow branches on the report): on drift,
  ``alert_drift`` names the drifted columns and the flow stops before scoring;
- ``read_vault_secret`` reads the model server's bearer token from Vault (KV v2 mount ``secret``,
  path ``guardflow/inference``, key ``token``) and ``run_inference`` sends it: the value never
  appears in the flow's code, parameters, logs or results;
- ``label_predictions`` turns each score into a label and a confidence and writes review items;
- ``request_approval`` is the approval gate under ``example_dags/policies/gate.yaml``: only
  items with confidence under 0.5 go to a human; the flow run pauses (Prefect's resume form
  works) until the gate store has a decision, made by signed link, on the review page
  (``guardflow gates serve``), with the CLI (``guardflow gates approve <id>``) or in the UI.
  Approved results are delivered, rejected ones quarantined.

Each step passes file URIs on, never data, and writes an audit event (``$GUARDFLOW_AUDIT_PATH``).
Files go under ``$GUARDFLOW_DEMO_DIR`` (default ``<tmp>/guardflow-demo``), one folder per flow
run. The model server is a saved ``InferenceEndpoint`` block when a block name is given (the
``endpoint_block`` parameter or ``$GUARDFLOW_ENDPOINT_BLOCK``), else the MLflow scoring server at
``$GUARDFLOW_ENDPOINT_URL`` (default ``http://127.0.0.1:5001``). Vault is a saved
``VaultCredentials`` block when named (``vault_block`` or ``$GUARDFLOW_VAULT_BLOCK``), else the
standard ``VAULT_ADDR`` and ``VAULT_TOKEN`` (or ``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID``)::

    VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=... \\
    GUARDFLOW_ENDPOINT_URL=http://127.0.0.1:5001 \\
        python example_dags/prefect/guardflow_reference.py [--simulate-drift]

``--simulate-drift`` (the ``simulate_drift`` parameter) lands a sample whose features moved, to
show the drift branch. The sample is the same as the Airflow example's: features ``f0``..``f3``,
what the demo model expects (the tiny model served by ``make demo`` and by the
``mlflow_model_server`` fixture of ``guardflow.testing``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from guardflow.drift import DriftReport
from guardflow.samples import (
    FEATURES,
    KEY_COLUMN,
    demo_dir,
    write_landed_csv,
    write_reference_csv,
    write_review_items,
)
from prefect_guardflow.drift import check_drift
from prefect_guardflow.gates import request_approval
from prefect_guardflow.inference import InferenceEndpoint, run_inference
from prefect_guardflow.pii import mask_pii
from prefect_guardflow.quality import validate_data
from prefect_guardflow.vault import VaultCredentials, read_vault_secret

ENDPOINT_URL_ENV = "GUARDFLOW_ENDPOINT_URL"
ENDPOINT_BLOCK_ENV = "GUARDFLOW_ENDPOINT_BLOCK"
VAULT_BLOCK_ENV = "GUARDFLOW_VAULT_BLOCK"
DEFAULT_ENDPOINT_URL = "http://127.0.0.1:5001"
POLICIES = Path(__file__).resolve().parents[1] / "policies"
QUALITY_SUITE = POLICIES / "sample_suite.yaml"
PII_POLICY = POLICIES / "pii.yaml"
DRIFT_POLICY = POLICIES / "drift.yaml"
GATE_POLICY = POLICIES / "gate.yaml"
REVIEW_BODY = (
    "The model is unsure of these predictions (confidence under 0.5). Check each item's features "
    "and label, correct labels that are wrong, then **approve** to deliver the results or "
    "**reject** to quarantine them."
)


def endpoint(block_name: str | None = None) -> InferenceEndpoint:
    """Return the model server: a saved block when named, else one built from the environment."""
    name = block_name or os.environ.get(ENDPOINT_BLOCK_ENV)
    if name:
        return InferenceEndpoint.load(name)
    url = os.environ.get(ENDPOINT_URL_ENV) or DEFAULT_ENDPOINT_URL
    return InferenceEndpoint(url=url, protocol="mlflow", batch_size=50, concurrency=2)


def vault(block_name: str | None = None) -> VaultCredentials:
    """Return how to reach Vault: a saved block when named, else the ``VAULT_*`` variables."""
    name = block_name or os.environ.get(VAULT_BLOCK_ENV)
    if name:
        return VaultCredentials.load(name)
    return VaultCredentials.from_env()


# Steps pass URIs, never data, and persist nothing: results would be pickled into Prefect storage.
@task(persist_result=False, cache_policy=NONE)
def ingest(folder: str, simulate_drift: bool = False) -> dict[str, str]:
    """Land this run's sample (and the reference sample, once) and name the files next steps write.

    Returns:
        ``landed_uri`` (personal data: read only by ``mask_pii``), ``input_uri`` (the masked
        copy every later step reads), ``reference_uri``, ``output_uri``, ``dead_letter_uri``
        and ``review_items_uri``.
    """
    landed = write_landed_csv(Path(folder) / "landed.csv", drift=simulate_drift)
    # The data the model was validated on; in production a versioned dataset (or a saved
    # guardflow.drift reference profile) rather than a file written here.
    reference = demo_dir() / "reference" / "features.csv"
    if not reference.exists():
        write_reference_csv(reference)
    return {
        "landed_uri": str(landed),
        "input_uri": str(Path(folder) / "input.csv"),
        "reference_uri": str(reference),
        "output_uri": str(Path(folder) / "scores.parquet"),
        "dead_letter_uri": str(Path(folder) / "scores.dead_letter.jsonl"),
        "review_items_uri": str(Path(folder) / "review_items.jsonl"),
    }


@task(persist_result=False, cache_policy=NONE)
def label_predictions(summary: dict[str, Any], items_uri: str) -> str:
    """Label each scored row with a confidence and write the review items (a file, not data).

    Returns:
        The review items' URI, which the approval gate reads.
    """
    return str(write_review_items(summary["output_uri"], items_uri))


@task(persist_result=False, cache_policy=NONE)
def quarantine(decision: dict[str, Any]) -> dict[str, Any]:
    """Keep rejected results out of delivery: reviewers said no, so nothing is published.

    Returns:
        The gate's outcome (ids, names and counts).
    """
    get_run_logger().warning(
        "Quarantined: reviewers rejected the predictions (gate %s); nothing delivered",
        decision["gate_id"],
    )
    return decision


@task(persist_result=False, cache_policy=NONE)
def alert_drift(report: DriftReport) -> dict[str, Any]:
    """Alert on drifted input; the flow stops after this step, before scoring.

    A real pipeline would page the model owner here (Slack, e-mail, an incident); the demo
    logs a warning naming the drifted columns.

    Returns:
        The drift verdict: drifted columns and share (statistics, never data values).
    """
    get_run_logger().warning(
        "ALERT: input drifted from the reference in %s (share %.2f); scoring skipped",
        ", ".join(report.drifted_columns),
        report.drifted_share,
    )
    return {"drifted_columns": report.drifted_columns, "drifted_share": report.drifted_share}


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
def guardflow_reference(
    endpoint_block: str | None = None,
    vault_block: str | None = None,
    simulate_drift: bool = False,
) -> dict[str, Any]:
    """Ingest -> mask PII -> quality and drift checks -> score (token from Vault) -> deliver.

    Args:
        endpoint_block: Name of a saved ``InferenceEndpoint`` block to score on.
        vault_block: Name of a saved ``VaultCredentials`` block to read the token with.
        simulate_drift: Land a drifted sample, to show the drift branch.

    Returns:
        ``branch`` (``"score"`` or ``"alert_drift"``), the ``quality`` and ``drift`` results,
        ``review`` and ``review_branch`` (``"deliver"`` or ``"quarantine"``) when scored, and
        ``scoring`` (the delivered summary, ``None`` when nothing was delivered).
    """
    folder = demo_dir() / "prefect" / str(flow_run.id or "manual")
    files = ingest(str(folder), simulate_drift)
    # Nothing reads the landed file but this step: personal data stops here.
    mask_pii(
        files["landed_uri"],
        files["input_uri"],
        str(PII_POLICY),
        vault_credentials=vault(vault_block),
    )
    quality = validate_data(files["input_uri"], str(QUALITY_SUITE), on_failure="fail")
    report = check_drift(
        files["reference_uri"], files["input_uri"], config=str(DRIFT_POLICY), on_failure="skip"
    )
    result: dict[str, Any] = {
        "quality": quality.to_dict(),
        "drift": report.cli_dict(),
        "scoring": None,
    }
    if report.dataset_drift:
        alert_drift(report)
        return {"branch": "alert_drift", **result}
    token = read_vault_secret(
        "guardflow/inference", key="token", mount="secret", credentials=vault(vault_block)
    )
    summary = run_inference(
        files["input_uri"],
        files["output_uri"],
        endpoint(endpoint_block),
        key_column=KEY_COLUMN,
        input_columns=list(FEATURES),
        dead_letter=files["dead_letter_uri"],
        token=token,
    )
    items_uri = label_predictions(summary, files["review_items_uri"])
    # Only low-confidence items go to a human (routing rule in gate.yaml); the flow pauses
    # without a busy worker until the gate store has a decision (link, page, CLI or the UI).
    decision = request_approval(
        "Review low-confidence predictions",
        REVIEW_BODY,
        context={"model": "guardflow demo model", "flow_run": str(flow_run.id or "manual")},
        items=items_uri,
        policy=str(GATE_POLICY),
        vault=vault(vault_block),
    )
    result["review"] = decision
    if not decision["approved"]:
        quarantine(decision)
        return {"branch": "score", "review_branch": "quarantine", **result}
    return {"branch": "score", "review_branch": "deliver", **result, "scoring": deliver(summary)}


if __name__ == "__main__":
    import sys

    outcome = guardflow_reference(simulate_drift="--simulate-drift" in sys.argv[1:])
    print(f"Drift branch taken: {outcome['branch']}")
    if outcome["branch"] == "alert_drift":
        drifted = [c["column"] for c in outcome["drift"]["columns"] if c["drifted"]]
        print(f"Drifted columns: {', '.join(drifted)}; nothing was scored")
    else:
        print(f"Review gate branch taken: {outcome['review_branch']}")
        scored = outcome["scoring"]
        if scored is not None:
            done, rows = scored["succeeded"], scored["rows"]
            print(f"Scored {done} of {rows} rows -> {scored['output_uri']}")
            if scored["failed"]:
                print(f"{scored['failed']} rows failed -> {scored['dead_letter_uri']}")
