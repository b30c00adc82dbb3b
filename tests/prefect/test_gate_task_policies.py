"""request_approval's policies: timeouts, restarts, routing, the async twin, and what never leaks.

Same real components as test_gate_tasks.py: the session's Prefect server, a SQLite gate store in
``tmp_path``, the review page and a webhook receiver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from gate_helpers import (
    BODY,
    PLANTED_EMAIL,
    SUBJECT,
    flow_run_id_of,
    flow_run_of,
    gate_policy,
    keyed_artifact,
    pending_gate,
    resume_with,
    run_artifacts,
    run_inputs,
    run_logs,
    signer_with_env_key,
    start_flow,
    wait_paused,
)
from prefect import flow

from guardflow.errors import ConfigurationError, GateTimeoutError
from prefect_guardflow.gates import arequest_approval, request_approval

if TYPE_CHECKING:
    from conftest import PrefectServer

    from guardflow.gates.tokens import LinkSigner
    from guardflow.testing.gate_fixtures import GateServer


@pytest.fixture
def gate_signer(monkeypatch: pytest.MonkeyPatch) -> LinkSigner:
    """The review page and the task sign links with the same key (the task reads it from env)."""
    return signer_with_env_key(monkeypatch)


def _ask(policy: dict[str, Any], store_url: str, **kwargs: Any) -> dict[str, Any]:
    return request_approval(  # type: ignore[no-any-return]
        SUBJECT,
        body=BODY,
        context={"owner": PLANTED_EMAIL},
        policy=policy,
        store_url=store_url,
        **kwargs,
    )


def _branch(decision: dict[str, Any]) -> str:
    return "delivered" if decision["approved"] else "quarantined"


@pytest.mark.parametrize(
    ("action", "branch", "outcome"),
    [("approve", "delivered", "approve"), ("reject", "quarantined", "reject")],
)
def test_expiry_applies_the_on_timeout_action_and_resumes_the_flow(
    gate_server: GateServer, notification_receiver: Any, action: str, branch: str, outcome: str
) -> None:
    policy = gate_policy(
        gate_server.url,
        notification_receiver.url("/hook"),
        expires_after_s=2,
        on_timeout=action,
    )

    @flow(persist_result=False)
    def deliver() -> tuple[str, dict[str, Any]]:
        decision = _ask(policy, gate_server.store.url)
        return _branch(decision), decision

    taken, decision = start_flow(deliver).result()

    assert taken == branch
    assert (decision["outcome"], decision["channel"], decision["timed_out"]) == (
        outcome,
        "timeout",
        True,
    )


def test_expiry_with_on_timeout_fail_fails_the_task(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(
        gate_server.url, notification_receiver.url("/hook"), expires_after_s=2, on_timeout="fail"
    )

    @flow(persist_result=False)
    def deliver() -> str:
        return _branch(_ask(policy, gate_server.store.url))

    state = start_flow(deliver).state()

    assert state.is_failed()
    with pytest.raises(GateTimeoutError, match="expired"):
        state.result()


def test_the_task_run_again_in_the_same_flow_run_notifies_once(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))

    @flow(persist_result=False)
    def deliver() -> list[dict[str, Any]]:
        first = _ask(policy, gate_server.store.url)
        again = _ask(policy, gate_server.store.url)  # a restarted worker runs the task again
        return [first, again]

    run = start_flow(deliver)
    notification_receiver.wait_for(1, timeout=90)
    link = notification_receiver.requests[0][2]["links"]["ana"]
    httpx.post(link, data={"option": "approve"}, timeout=30)

    first, again = run.result()
    assert first == again
    assert first["decided_by"] == ["ana"]
    assert len(notification_receiver.requests) == 1


def test_a_worker_restarted_on_the_same_flow_run_finds_its_gate_and_notifies_once(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    """The first worker's task dies mid-wait (a task timeout stands in for the lost process);
    a new worker then runs the same flow run again, as Prefect does when it is rescheduled."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))
    lost = {"first": True}
    dying = request_approval.with_options(timeout_seconds=3, retries=0)

    @flow(persist_result=False)
    def deliver() -> str:
        task = dying if lost.pop("first", False) else request_approval
        decision = task(SUBJECT, body=BODY, policy=policy, store_url=gate_server.store.url)
        return _branch(decision)

    first = start_flow(deliver).state()
    assert first.is_failed()
    flow_run_id = flow_run_of(first)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Scheduled(), force=True)
        flow_run = client.read_flow_run(flow_run_id)

    run = start_flow(deliver, flow_run=flow_run)
    record = pending_gate(gate_server.store)
    wait_paused(flow_run_id, record.id, 2)  # the new worker walked past the first one's pause
    link = notification_receiver.requests[0][2]["links"]["ana"]
    httpx.post(link, data={"option": "approve"}, timeout=30)

    assert run.result() == "delivered"
    assert len(notification_receiver.requests) == 1


def test_routing_that_passes_every_item_returns_at_once_without_notifying(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(
        gate_server.url, notification_receiver.url("/hook"), routing={"below": 0.8}
    )
    items = [{"id": str(i), "prediction": "ok", "confidence": 0.95} for i in range(5)]

    @flow(persist_result=False)
    def deliver() -> dict[str, Any]:
        return request_approval(  # type: ignore[no-any-return]
            SUBJECT, items=items, policy=policy, store_url=gate_server.store.url
        )

    decision = start_flow(deliver).result()

    assert (decision["channel"], decision["approved"], decision["items_passed"]) == (
        "routing",
        True,
        5,
    )
    assert notification_receiver.requests == []


def test_async_twin_waits_with_the_async_pause_and_records_a_resume_api_vote(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))

    @flow(persist_result=False)
    async def deliver() -> tuple[str, dict[str, Any]]:
        decision = await arequest_approval(
            SUBJECT, body=BODY, policy=policy, store_url=gate_server.store.url
        )
        return _branch(decision), decision

    run = start_flow(deliver)
    record = pending_gate(gate_server.store)
    flow_run_id = flow_run_id_of(record)
    wait_paused(flow_run_id, record.id, 1)
    resume_with(flow_run_id, {"reviewer": "ana", "option": "reject"})

    branch, decision = run.result()
    assert (branch, decision["channel"]) == ("quarantined", "prefect")


def test_async_twin_is_resumed_by_a_signed_link(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))

    @flow(persist_result=False)
    async def deliver() -> str:
        decision = await arequest_approval(SUBJECT, policy=policy, store_url=gate_server.store.url)
        return _branch(decision)

    run = start_flow(deliver)
    notification_receiver.wait_for(1, timeout=90)
    link = notification_receiver.requests[0][2]["links"]["bo"]
    httpx.post(link, data={"option": "approve"}, timeout=30)

    assert run.result() == "delivered"


def test_outcome_artifact_is_keyed_and_holds_counts_and_channel(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))

    @flow(persist_result=False)
    def deliver() -> dict[str, Any]:
        return _ask(policy, gate_server.store.url, artifact_key="delivery-gate")

    run = start_flow(deliver)
    notification_receiver.wait_for(1, timeout=90)
    httpx.post(notification_receiver.requests[0][2]["links"]["ana"], data={"option": "approve"})
    state = run.state()

    markdown = keyed_artifact("delivery-gate", flow_run_of(state)).data
    assert "| Votes | approve: 1 |" in markdown
    assert "| Channel | link |" in markdown
    assert "| Approved | yes |" in markdown


def test_planted_email_reaches_no_log_artifact_result_or_resume_form(
    gate_server: GateServer, notification_receiver: Any, prefect_server: PrefectServer
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))

    @flow(persist_result=False)
    def deliver() -> dict[str, Any]:
        return _ask(policy, gate_server.store.url)

    run = start_flow(deliver)
    record = pending_gate(gate_server.store)
    flow_run_id = flow_run_id_of(record)
    wait_paused(flow_run_id, record.id, 1)
    comment = f"checked with {PLANTED_EMAIL}"  # kept in the gate store, not in Prefect
    resume_with(flow_run_id, {"reviewer": "ana", "option": "approve", "comment": comment})
    decision = run.result()

    assert gate_server.store.get(record.id).votes[0].comment == comment
    inputs = run_inputs(flow_run_id)
    assert any("Deliver tonight" in value for value in inputs)  # the form's description
    seen = [
        run_logs(flow_run_id),
        repr(decision),
        *(str(a.data) for a in run_artifacts(flow_run_id)),
        *inputs,
        str(notification_receiver.requests),
        prefect_server.audit_path.read_text(encoding="utf-8"),
    ]
    assert not [text for text in seen if PLANTED_EMAIL in text]


def test_results_are_not_persisted(
    gate_server: GateServer, notification_receiver: Any, prefect_server: PrefectServer
) -> None:
    policy = gate_policy(
        gate_server.url, notification_receiver.url("/hook"), routing={"below": 0.5}
    )
    before = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}

    @flow(persist_result=False)
    def deliver() -> dict[str, Any]:
        return request_approval(  # type: ignore[no-any-return]
            SUBJECT,
            items=[{"id": "1", "prediction": "ok", "confidence": 0.9}],
            context={"owner": PLANTED_EMAIL},
            policy=policy,
            store_url=gate_server.store.url,
        )

    assert start_flow(deliver).result()["approved"] is True
    stored = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}
    assert stored == before


def test_outside_a_flow_the_task_refuses_with_a_configuration_error(
    gate_server: GateServer,
) -> None:
    with pytest.raises(ConfigurationError, match="inside a flow"):
        request_approval.fn(SUBJECT, store_url=gate_server.store.url)


def test_an_unknown_on_reject_value_is_refused(gate_server: GateServer) -> None:
    @flow(persist_result=False)
    def deliver() -> dict[str, Any]:
        return request_approval(  # type: ignore[call-overload,no-any-return]
            SUBJECT, store_url=gate_server.store.url, on_reject="skip"
        )

    state = start_flow(deliver).state()

    with pytest.raises(ConfigurationError, match="on_reject"):
        state.result()
