"""Who runs a step: orchestrator-neutral run identity and the deterministic step key.

A step key is derived from (pipeline, run, task, map index, input fingerprint) and nothing that
changes between attempts, so a retried step reuses it: the same Idempotency-Key on inference
requests, the same checkpoint folder, the same gate request.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict

__all__ = ["RunIdentity", "step_key"]


class RunIdentity(BaseModel):
    """Where a step runs, in orchestrator-neutral terms.

    Args:
        orchestrator: ``"airflow"``, ``"prefect"``, ``"cli"`` or anything else that runs steps.
        pipeline: DAG id or flow name.
        run_id: DAG run id or flow run id.
        task_id: Task id (Airflow) or task key (Prefect).
        map_index: Index of a mapped task instance; -1 when not mapped.
        attempt: Attempt number (1-based); recorded, never part of the step key.
    """

    model_config = ConfigDict(frozen=True)

    orchestrator: str = "cli"
    pipeline: str = "adhoc"
    run_id: str = "local"
    task_id: str = "step"
    map_index: int = -1
    attempt: int = 1


def step_key(identity: RunIdentity, input_fingerprint: str, *, purpose: str = "") -> str:
    """Return a deterministic key for one step on one input.

    Args:
        identity: The run identity; ``attempt`` is deliberately left out.
        input_fingerprint: The input's fingerprint (see :mod:`guardflow.fingerprint`).
        purpose: Distinguishes several keyed things inside one step.

    Returns:
        32 hex characters, stable across retries of the same step on the same input.
    """
    material = json.dumps(
        [
            identity.pipeline,
            identity.run_id,
            identity.task_id,
            identity.map_index,
            input_fingerprint,
            purpose,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]
