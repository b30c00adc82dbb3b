"""The request_approval task in real flows: every way a reviewer decides resumes the right branch.

Each test runs a delivery flow on a thread against the session's Prefect server, with a real
SQLite gate store, the review page (``gate_server``) and a real webhook receiver the gate
announces itself to. The reviewer decides by the signed link from the notification, the CLI, the
Prefect resume API or the review page in headless Chromium; the flow must go on the branch the
gate store decided.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from gate_helpers import (
    BODY,
    PLANTED_EMAIL,
    SUBJECT,
    flow_run_id_of,
    gate_policy,
    pending_gate,
    resume_with,
    run_inputs,
    run_logs,
    signer_with_env_key,
    start_flow,
    wait_paused,
    wait_until,
)
from prefect import flow

from guardflow.gates.models import GateStatus
from prefect_guardflow.gates import request_approval

if TYPE_CHECKING:
    from guardflow.gates.tokens import LinkSigner
    from guardflow.testing.gate_fixtures import GateServer


@pytest.fixture
def gate_signer(monkeypatch: pytest.MonkeyPatch) -> LinkSigner:
    """The review page and the task sign links with the same key (the task reads it from env)."""
    return signer_with_env_key(monkeypatch)


def delivery_flow(policy: dict[str, Any], store_url: str, **task_kwargs: Any) -> Any:
    """A flow that delivers predictions only when the gate approves."""

    @flow(persist_result=False)
    def deliver_predictions() -> tuple[str, dict[str, Any]]:
        decision = request_approval(
            SUBJECT,
            body=BODY,
            context={"owner": PLANTED_EMAIL, "rows": 120},
            policy=policy,
            store_url=store_url,
            **task_kwargs,
        )
        return ("delivered" if decision["approved"] else "quarantined"), decision

    return deliver_predictions


def _announcement(receiver: Any) -> dict[str, Any]:
    receiver.wait_for(1, timeout=90)
    path, _headers, body = receiver.requests[0]
    assert path == "/hook"
    return body  # type: ignore[no-any-return]


def test_signed_link_from_the_notification_approves_and_the_flow_delivers(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))
    run = start_flow(delivery_flow(policy, gate_server.store.url))

    link = _announcement(notification_receiver)["links"]["ana"]
    response = httpx.post(link, data={"option": "approve", "comment": "looks fine"}, timeout=30)

    assert response.status_code == 200
    branch, decision = run.result()
    assert branch == "delivered"
    assert (decision["outcome"], decision["channel"], decision["decided_by"]) == (
        "approve",
        "link",
        ["ana"],
    )


def test_cli_reject_resumes_the_flow_on_the_quarantine_branch(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))
    run = start_flow(delivery_flow(policy, gate_server.store.url))
    record = pending_gate(gate_server.store)

    cli = Path(sys.executable).with_name("guardflow")
    done = subprocess.run(
        [str(cli), "gates", "reject", record.id, "--store", gate_server.store.url],
        env={**os.environ, "GUARDFLOW_REVIEWER": "bo"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    branch, decision = run.result()
    assert branch == "quarantined"
    assert (decision["outcome"], decision["channel"], decision["approved"]) == (
        "reject",
        "cli",
        False,
    )


def test_resume_api_input_is_recorded_as_a_prefect_vote(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))
    run = start_flow(delivery_flow(policy, gate_server.store.url))
    record = pending_gate(gate_server.store)
    flow_run_id = flow_run_id_of(record)
    wait_paused(flow_run_id, record.id, 1)

    form = json.loads(run_inputs(flow_run_id, f"paused-guardflow-gate-{record.id}-1-schema")[0])
    assert form["properties"]["option"]["enum"] == ["approve", "reject"]  # a drop-down in the UI

    resume_with(flow_run_id, {"reviewer": "bo", "option": "approve", "comment": "ok"})

    branch, decision = run.result()
    assert branch == "delivered"
    assert (decision["channel"], decision["decided_by"]) == ("prefect", ["bo"])
    stored = gate_server.store.get(record.id)
    assert [(v.reviewer, v.channel, v.comment) for v in stored.votes] == [("bo", "prefect", "ok")]


def test_review_page_in_chromium_approves_and_the_flow_delivers(
    gate_server: GateServer, notification_receiver: Any, chromium_page: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))
    run = start_flow(delivery_flow(policy, gate_server.store.url))
    record = pending_gate(gate_server.store)

    chromium_page.set_extra_http_headers(gate_server.headers("ana"))
    chromium_page.goto(f"{gate_server.url}/gates/{record.id}")
    assert PLANTED_EMAIL not in chromium_page.content()  # reviewers see masked context
    chromium_page.get_by_role("button", name="Approve").click()
    chromium_page.wait_for_load_state()

    branch, decision = run.result()
    assert branch == "delivered"
    assert (decision["channel"], decision["decided_by"]) == ("page", ["ana"])


def test_two_of_two_quorum_pauses_again_after_the_first_vote(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"), required_approvals=2)
    run = start_flow(delivery_flow(policy, gate_server.store.url))
    record = pending_gate(gate_server.store)
    flow_run_id = flow_run_id_of(record)
    wait_paused(flow_run_id, record.id, 1)

    resume_with(flow_run_id, {"reviewer": "ana", "option": "approve"})

    wait_paused(flow_run_id, record.id, 2)  # one vote of two: the task waits again
    assert gate_server.store.get(record.id).status is GateStatus.PENDING
    link = _announcement(notification_receiver)["links"]["bo"]
    assert httpx.post(link, data={"option": "approve"}, timeout=30).status_code == 200
    branch, decision = run.result()
    assert branch == "delivered"
    assert (sorted(decision["decided_by"]), decision["votes"]) == (["ana", "bo"], {"approve": 2})
    assert decision["channel"] == "link"


def test_a_refused_resume_form_vote_is_logged_and_the_task_waits_again(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))
    run = start_flow(delivery_flow(policy, gate_server.store.url))
    record = pending_gate(gate_server.store)
    flow_run_id = flow_run_id_of(record)
    wait_paused(flow_run_id, record.id, 1)

    resume_with(flow_run_id, {"reviewer": "mallory", "option": "approve"})  # not an assignee

    wait_paused(flow_run_id, record.id, 2)
    assert gate_server.store.get(record.id).votes == []

    def refusal_logged() -> str | None:
        text = run_logs(flow_run_id)
        return text if "is not an assignee" in text else None

    logs = wait_until(refusal_logged, what="the refused vote to be logged")
    assert "mallory" not in logs  # what the reviewer typed is not echoed
    resume_with(flow_run_id, {"reviewer": "ana", "option": "reject"})
    branch, decision = run.result()
    assert (branch, decision["decided_by"]) == ("quarantined", ["ana"])


def test_on_reject_fail_fails_the_task_with_gate_rejected_error(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    from guardflow.errors import GateRejectedError

    policy = gate_policy(gate_server.url, notification_receiver.url("/hook"))
    run = start_flow(delivery_flow(policy, gate_server.store.url, on_reject="fail"))
    link = _announcement(notification_receiver)["links"]["bo"]

    httpx.post(link, data={"option": "reject"}, timeout=30)

    state = run.state()
    assert state.is_failed()
    with pytest.raises(GateRejectedError, match="rejected"):
        state.result(_sync=True)  # type: ignore[call-overload]


def test_the_waiting_task_escalates_and_an_escalated_reviewer_decides(
    gate_server: GateServer, notification_receiver: Any
) -> None:
    policy = gate_policy(
        gate_server.url,
        notification_receiver.url("/hook"),
        escalation=[{"after_s": 1, "assignees": ["group:leads"]}],
        groups={"leads": ["cy"]},
    )
    run = start_flow(delivery_flow(policy, gate_server.store.url))

    escalated = notification_receiver.wait_for(2, timeout=90)[1].json
    assert (escalated["event"], sorted(escalated["links"])) == ("gate.escalated", ["cy"])
    httpx.post(escalated["links"]["cy"], data={"option": "approve"}, timeout=30)

    branch, decision = run.result()
    assert (branch, decision["decided_by"]) == ("delivered", ["cy"])


def test_a_reviewer_decides_from_the_link_in_their_email(
    gate_server: GateServer, notification_receiver: Any, smtp_sink: Any
) -> None:
    email = {"kind": "email", "host": smtp_sink.host, "port": smtp_sink.port}
    policy = gate_policy(
        gate_server.url,
        notification_receiver.url("/hook"),
        emails={"ana": "ana@example.org", "bo": "bo@example.org"},
    )
    policy["notifiers"].append(email)
    run = start_flow(delivery_flow(policy, gate_server.store.url))

    mails = smtp_sink.wait_for(2, timeout=90)
    to_bo = next(m for m in mails if m["To"] == "bo@example.org")
    text = to_bo.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"http://\S+/l/\S+", text)
    assert link is not None
    httpx.post(link.group(0), data={"option": "reject"}, timeout=30)

    branch, decision = run.result()
    assert (branch, decision["decided_by"], decision["channel"]) == ("quarantined", ["bo"], "link")
