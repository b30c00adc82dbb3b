"""Human approval gates in Prefect flows: ``request_approval`` / ``arequest_approval`` tasks.

The task opens a :class:`~guardflow.gates.Gate` (its id comes from the flow run, the task and the
subject, so a retried or re-run task finds its gate and never notifies twice) and, unless the gate
is already decided (routing let everything through, or an earlier attempt saw it resolved),
pauses the flow run with ``pause_flow_run(wait_for_input=...)``: the run holds no worker busy
loop, and the Prefect UI shows a resume form. Reviewers decide wherever suits them:

- in the Prefect UI form, or with ``resume_flow_run(id, run_input={...})``: recorded as a vote
  (channel ``prefect``); while the quorum is not met, the task pauses again;
- by signed link, on the review page or with ``guardflow gates approve``: a watcher thread sees
  the store change and resumes the run through Prefect's resume API.

The gate store decides, never the first click: quorum, eligible reviewers and expiry are the
store's. The task returns :meth:`GateOutcome.to_dict() <guardflow.gates.GateOutcome.to_dict>`
(ids, option, counts), so a flow branches with plain Python::

    decision = request_approval("Deliver 120 predictions?", policy="gate.yaml")
    if decision["approved"]:
        deliver()
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from guardflow.errors import ConfigurationError, GateRejectedError, GateTimeoutError
from prefect_guardflow._gate_form import GateDecisionInput, summary_markdown
from prefect_guardflow._gate_watch import await_gate, wait
from prefect_guardflow._runtime import (
    retry_on_retryable_error,
    run_identity,
    send_core_logs_to_prefect,
)

if TYPE_CHECKING:
    from uuid import UUID

    from guardflow.gates.models import GateOutcome, GatePolicy, GateRecord
    from guardflow.gates.service import Gate
    from guardflow.secrets import VaultClient
    from prefect_guardflow._vault_credentials import VaultCredentials

__all__ = ["GateDecisionInput", "arequest_approval", "request_approval"]

OnReject = Literal["return", "fail"]

_TASK_OPTIONS: dict[str, Any] = {
    # A store that is busy or a notifier that failed is worth another attempt, which finds the
    # same gate; a rejection or an expiry is a decision and is never retried.
    "retries": 2,
    "retry_delay_seconds": [10, 60],
    "retry_condition_fn": retry_on_retryable_error,
    # Inputs may hold data under review: never hash them into a cache key or pickle results.
    "persist_result": False,
    "cache_policy": NONE,
}


@task(name="request_approval", **_TASK_OPTIONS)
def request_approval(
    subject: str,
    body: str = "",
    *,
    context: Mapping[str, Any] | None = None,
    items: Sequence[Mapping[str, Any]] | None = None,
    policy: GatePolicy | Mapping[str, Any] | str | None = None,
    store_url: str | None = None,
    vault: VaultCredentials | None = None,
    on_reject: OnReject = "return",
    key: str = "",
    artifact_key: str | None = "guardflow-gate",
) -> dict[str, Any]:
    """Ask humans to decide, wait for the gate store's decision, and return it.

    Opens the gate (notifying reviewers once), then pauses the flow run until the store resolves
    the gate. Input from the Prefect UI resume form (or the resume API) counts as one reviewer's
    vote; while the quorum is not met the run pauses again. Decisions by signed link, on the review
    page or with the CLI, and the gate's expiry, resume the run through Prefect's resume API. A
    markdown artifact records the outcome (counts and channel, no data).

    Args:
        subject: One line saying what is to be decided.
        body: Markdown details (masked before reviewers see it).
        context: Data shown to reviewers (masked; never logged or returned).
        items: Items to review one by one (with a routing rule, only low-confidence ones).
        policy: A :class:`~guardflow.gates.GatePolicy`, its fields as a dict, or a YAML path.
        store_url: SQLAlchemy URL of the gate store (default: the policy's, else
            ``$GUARDFLOW_GATES_DB``, else a SQLite file under ``~/.guardflow``).
        vault: Vault credentials block for ``vault://`` references in the policy (signing key,
            webhook URLs, SMTP password).
        on_reject: ``"return"`` returns the outcome with ``approved`` false; ``"fail"`` raises.
        key: Tells apart several gates with the same subject in one task.
        artifact_key: Key of the outcome artifact (lowercase letters, digits, dashes), or
            ``None`` for an unkeyed one.

    Returns:
        The outcome: ``gate_id``, ``status``, ``outcome``, ``approved``, ``decided_by``,
        ``channel``, ``votes`` (per option), item counts, ``timed_out``.

    Raises:
        GateRejectedError: The gate resolved to a reject option and ``on_reject="fail"``.
        GateTimeoutError: The gate expired and its on-timeout action is ``fail``.
        ConfigurationError: The policy or an argument is invalid, or no flow run is active.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.gates import request_approval

        @flow
        def deliver_predictions() -> str:
            decision = request_approval(
                "Deliver tonight's predictions?",
                body="**120** rows, 7 under the confidence threshold",
                policy="policies/gate.yaml",
            )
            return "delivered" if decision["approved"] else "quarantined"
        ```
    """
    from prefect.artifacts import create_markdown_artifact

    _check_on_reject(on_reject)
    send_core_logs_to_prefect()
    flow_run_id = _flow_run_id()
    gate, client = _build_gate(policy, store_url, vault)
    try:
        record = _open(gate, flow_run_id, subject, body, context, items, key)
        record = wait(gate, record, flow_run_id)
        outcome = gate.outcome(record)
    finally:
        _close(gate, client)
    create_markdown_artifact(
        markdown=summary_markdown(outcome),
        key=artifact_key,
        description="guardflow approval gate outcome",
    )
    return _finish(outcome, on_reject)


@task(name="arequest_approval", **_TASK_OPTIONS)
async def arequest_approval(
    subject: str,
    body: str = "",
    *,
    context: Mapping[str, Any] | None = None,
    items: Sequence[Mapping[str, Any]] | None = None,
    policy: GatePolicy | Mapping[str, Any] | str | None = None,
    store_url: str | None = None,
    vault: VaultCredentials | None = None,
    on_reject: OnReject = "return",
    key: str = "",
    artifact_key: str | None = "guardflow-gate",
) -> dict[str, Any]:
    """Async twin of :func:`request_approval`, for async flows: same arguments and behaviour.

    Store calls and notifications run in worker threads and the wait uses Prefect's async
    pause, so the event loop stays free.

    Args:
        subject: One line saying what is to be decided.
        body: Markdown details (masked before reviewers see it).
        context: Data shown to reviewers (masked; never logged or returned).
        items: Items to review one by one.
        policy: A GatePolicy, its fields as a dict, or a YAML path.
        store_url: SQLAlchemy URL of the gate store.
        vault: Vault credentials block for ``vault://`` references in the policy.
        on_reject: ``"return"`` or ``"fail"``.
        key: Tells apart several gates with the same subject in one task.
        artifact_key: Key of the outcome artifact, or ``None``.

    Returns:
        The outcome as plain data.

    Raises:
        GateRejectedError: The gate was rejected and ``on_reject="fail"``.
        GateTimeoutError: The gate expired and its on-timeout action is ``fail``.
        ConfigurationError: The policy or an argument is invalid, or no flow run is active.

    Examples:
        ```python
        from prefect import flow
        from prefect_guardflow.gates import arequest_approval

        @flow
        async def deliver_predictions() -> str:
            decision = await arequest_approval("Deliver tonight's predictions?")
            return "delivered" if decision["approved"] else "quarantined"
        ```
    """
    from prefect.artifacts import acreate_markdown_artifact

    _check_on_reject(on_reject)
    send_core_logs_to_prefect()
    flow_run_id = _flow_run_id()
    gate, client = await asyncio.to_thread(_build_gate, policy, store_url, vault)
    try:
        record = await asyncio.to_thread(
            _open, gate, flow_run_id, subject, body, context, items, key
        )
        record = await await_gate(gate, record, flow_run_id)
        outcome = await asyncio.to_thread(gate.outcome, record)
    finally:
        await asyncio.to_thread(_close, gate, client)
    await acreate_markdown_artifact(
        markdown=summary_markdown(outcome),
        key=artifact_key,
        description="guardflow approval gate outcome",
    )
    return _finish(outcome, on_reject)


def _check_on_reject(value: str) -> None:
    if value not in ("return", "fail"):
        raise ConfigurationError("on_reject must be 'return' or 'fail'")


def _flow_run_id() -> UUID:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        raise ConfigurationError(
            "request_approval pauses its flow run while reviewers decide: call it inside a flow"
        )
    return ctx.flow_run.id


def _build_gate(
    policy: GatePolicy | Mapping[str, Any] | str | None,
    store_url: str | None,
    vault: VaultCredentials | None,
) -> tuple[Gate, VaultClient | None]:
    from guardflow.gates.models import GatePolicy
    from guardflow.gates.service import Gate

    source = dict(policy) if isinstance(policy, Mapping) else policy
    loaded = GatePolicy.load(source)
    client = vault.get_client() if vault is not None else None
    return Gate(loaded, store_url=store_url, vault=client), client


def _close(gate: Gate, client: VaultClient | None) -> None:
    gate.store.dispose()
    if client is not None:
        client.close()


def _open(
    gate: Gate,
    flow_run_id: UUID,
    subject: str,
    body: str,
    context: Mapping[str, Any] | None,
    items: Sequence[Mapping[str, Any]] | None,
    key: str,
) -> GateRecord:
    record = gate.open(
        identity=run_identity(),
        subject=subject,
        body=body,
        context=context,
        items=items,
        key=key,
        external={"prefect_flow_run_id": str(flow_run_id)},
    )
    get_run_logger().info(
        "Gate %s opened (%s): %d item(s) to review, %d passed by routing",
        record.id,
        record.status.value,
        record.item_count,
        record.passed_count,
    )
    return record


def _finish(outcome: GateOutcome, on_reject: OnReject) -> dict[str, Any]:
    from guardflow.gates.models import GateStatus

    logger = get_run_logger()
    logger.info(
        "Gate %s %s: %s via %s",
        outcome.gate_id,
        outcome.status.value,
        outcome.outcome,
        outcome.channel,
    )
    if outcome.status is GateStatus.EXPIRED:
        raise GateTimeoutError(
            f"gate {outcome.gate_id} expired without a decision (on_timeout='fail')",
            gate_id=outcome.gate_id,
        )
    if not outcome.approved and on_reject == "fail":
        raise GateRejectedError(
            f"gate {outcome.gate_id} was rejected ({outcome.outcome!r} via {outcome.channel}); "
            "on_reject='fail' fails the task",
            gate_id=outcome.gate_id,
        )
    return outcome.to_dict()
