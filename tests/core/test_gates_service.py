"""The gate service: idempotent open, masking, notifications once, routing, escalation, expiry.

Real SQLite store files, real notifiers posting to a local HTTP receiver and a local SMTP sink, a
real link signer. Time is moved by passing ``now=`` (the store applies expiry at that time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.errors import GateVoteRefusedError, NotificationError
from guardflow.gates.models import (
    EmailNotifierConfig,
    Escalation,
    GatePolicy,
    GateStatus,
    RoutingRule,
    TimeoutAction,
)
from guardflow.gates.notify import EmailNotifier, WebhookNotifier
from guardflow.gates.service import Gate
from guardflow.gates.store import GateStore
from guardflow.gates.tokens import LinkSigner
from guardflow.identity import RunIdentity

PLANTED_EMAIL = "jane.planted.doe@example.org"
T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
IDENTITY = RunIdentity(orchestrator="airflow", pipeline="orders", run_id="r1", task_id="gate")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "gates.db"


@pytest.fixture
def store(db: Path) -> Iterator[GateStore]:
    store = GateStore(f"sqlite:///{db}")
    yield store
    store.dispose()


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(secrets.token_urlsafe(48))


@pytest.fixture
def sink() -> MemoryAuditSink:
    return MemoryAuditSink()


def _gate(
    store: Any,
    signer: LinkSigner,
    sink: MemoryAuditSink,
    notifiers: list[Any] | None = None,
    **policy: Any,
) -> Gate:
    return Gate(
        GatePolicy.model_validate(policy),
        store=store,
        notifiers=notifiers or [],
        signer=signer,
        audit_sink=sink,
    )


def _webhook(receiver: Any, **kwargs: Any) -> WebhookNotifier:
    return WebhookNotifier(receiver.url("/hook"), **kwargs)


def _events(receiver: Any) -> list[str]:
    return [payload["event"] for _, _, payload in receiver.requests]


# --- ids and idempotence -----------------------------------------------------------------------


def test_open_twice_returns_the_same_stored_gate(store: Any, signer: LinkSigner, sink: Any) -> None:
    gate = _gate(store, signer, sink)

    first = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)
    second = gate.open(identity=IDENTITY, subject="Ship it?", now=T0 + timedelta(seconds=5))

    assert first.id == second.id == Gate.gate_id(IDENTITY, subject="Ship it?")
    assert second.created_at == first.created_at
    assert len(store.list()) == 1


def test_the_attempt_number_does_not_change_the_gate_id() -> None:
    retry = IDENTITY.model_copy(update={"attempt": 3})

    assert Gate.gate_id(retry, subject="s") == Gate.gate_id(IDENTITY, subject="s")


def test_another_key_or_subject_opens_another_gate() -> None:
    base = Gate.gate_id(IDENTITY, subject="s")

    assert Gate.gate_id(IDENTITY, subject="s", key="b") != base
    assert Gate.gate_id(IDENTITY, subject="t") != base


def test_planted_email_reaches_neither_the_receiver_nor_the_store(
    store: Any,
    db: Path,
    signer: LinkSigner,
    sink: MemoryAuditSink,
    notification_receiver: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gate = _gate(store, signer, sink, [_webhook(notification_receiver)], assignees=["ana"])

    for _ in range(2):
        record = gate.open(
            identity=IDENTITY,
            subject=f"Refund for {PLANTED_EMAIL}?",
            body=f"Customer **{PLANTED_EMAIL}** asked twice.",
            context={"customer": {"email": PLANTED_EMAIL}, "amount": 12.5},
            items=[{"id": "i1", "note": f"mail {PLANTED_EMAIL}", "confidence": 0.1}],
            now=T0,
        )

    assert len(notification_receiver.requests) == 1
    assert PLANTED_EMAIL not in json.dumps(notification_receiver.requests[0][2])
    assert PLANTED_EMAIL not in record.model_dump_json()
    assert "<EMAIL_ADDRESS>" in record.subject
    assert record.context["amount"] == 12.5
    assert PLANTED_EMAIL not in json.dumps(
        [i.model_dump(mode="json") for i in store.items(record.id)]
    )
    store.dispose()
    stored = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert PLANTED_EMAIL.encode() not in stored
    assert PLANTED_EMAIL not in caplog.text
    assert PLANTED_EMAIL not in "".join(e.model_dump_json() for e in sink.events)


def test_a_retried_open_from_a_new_worker_never_notifies_twice(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    for _ in range(3):  # each loop is a restarted worker with its own Gate
        gate = _gate(store, signer, sink, [_webhook(notification_receiver)], assignees=["ana"])
        gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    assert _events(notification_receiver) == ["gate.opened"]


def test_the_opened_notification_carries_the_eligible_reviewers_links(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    gate = _gate(
        store,
        signer,
        sink,
        [_webhook(notification_receiver)],
        assignees=["ana", "group:ops"],
        groups={"ops": ["bo"]},
    )

    record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    links = notification_receiver.requests[0][2]["links"]
    assert sorted(links) == ["ana", "bo"]
    token = links["bo"].rsplit("/l/", 1)[1]
    claims = signer.verify(token)
    assert (claims.gate_id, claims.reviewer) == (record.id, "bo")


def test_email_goes_once_to_each_assignee_with_an_address(
    store: Any, signer: LinkSigner, sink: Any, smtp_sink: Any
) -> None:
    emails = {"ana": "ana@corp.test", "bo": "bo@corp.test"}
    config = EmailNotifierConfig(host=smtp_sink.host, port=smtp_sink.port)
    for _ in range(2):
        notifier = EmailNotifier(config, password=None, emails=emails)
        gate = _gate(store, signer, sink, [notifier], assignees=["ana", "bo"], emails=emails)
        gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    smtp_sink.wait_for(2, timeout=10)
    assert sorted(m["To"] for m in smtp_sink.messages) == ["ana@corp.test", "bo@corp.test"]


# --- notification failures --------------------------------------------------------------------


def test_a_failed_notification_keeps_the_gate_pending_and_logs_a_warning(
    store: Any,
    signer: LinkSigner,
    sink: Any,
    notification_receiver: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notification_receiver.fail_next(10, 400)
    gate = _gate(store, signer, sink, [_webhook(notification_receiver, retries=1)])

    with caplog.at_level(logging.WARNING, logger="guardflow.gates.service"):
        record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    assert store.get(record.id).status is GateStatus.PENDING
    assert [n["status"] for n in store.notifications(record.id)] == ["failed"]
    assert "webhook" in caplog.text
    assert notification_receiver.url("/hook") not in caplog.text


def test_a_retried_open_sends_a_notification_that_failed_before(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    notification_receiver.fail_next(1, 400)
    gate = _gate(store, signer, sink, [_webhook(notification_receiver, retries=1)])
    gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    assert [n["status"] for n in store.notifications(record.id)] == ["sent"]
    assert len(notification_receiver.delivered) == 1


def test_strict_notify_raises_only_after_the_gate_is_stored(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    notification_receiver.fail_next(10, 400)
    gate = Gate(
        GatePolicy(),
        store=store,
        notifiers=[_webhook(notification_receiver, retries=1)],
        signer=signer,
        audit_sink=sink,
        strict_notify=True,
    )

    with pytest.raises(NotificationError):
        gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    assert store.get(Gate.gate_id(IDENTITY, subject="Ship it?")).is_open


# --- routing ----------------------------------------------------------------------------------


def test_all_confident_items_resolve_the_gate_by_routing_without_notifying(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    gate = _gate(
        store, signer, sink, [_webhook(notification_receiver)], routing=RoutingRule(below=0.5)
    )
    items = [{"id": n, "confidence": 0.9} for n in range(3)]

    record = gate.open(identity=IDENTITY, subject="Deliver?", items=items, now=T0)

    assert (record.status, record.outcome, record.resolution_channel) == (
        GateStatus.RESOLVED,
        "approve",
        "routing",
    )
    assert gate.outcome(record).items_passed == 3
    assert notification_receiver.requests == []


def test_only_low_confidence_items_are_stored_for_review(
    store: Any, signer: LinkSigner, sink: Any
) -> None:
    gate = _gate(store, signer, sink, routing=RoutingRule(below=0.5))
    items = [
        {"id": "a", "confidence": 0.9, "prediction": "cat"},
        {"id": "b", "confidence": 0.2, "prediction": "dog"},
        {"id": "c", "prediction": "cow"},
    ]

    record = gate.open(identity=IDENTITY, subject="Deliver?", items=items, now=T0)

    stored = store.items(record.id)
    assert [(i.item_id, i.prediction, i.score) for i in stored] == [
        ("b", "dog", 0.2),
        ("c", "cow", None),
    ]
    assert (record.item_count, record.passed_count, record.status) == (2, 1, GateStatus.PENDING)


def test_an_item_id_that_is_pii_is_stored_as_a_stable_hash(
    store: GateStore, signer: LinkSigner, sink: Any
) -> None:
    gate = _gate(store, signer, sink, routing=RoutingRule(id_field="who", below=0.5))
    items = [{"who": PLANTED_EMAIL}, {"who": "other." + PLANTED_EMAIL}, {"who": "plain-7"}]

    record = gate.open(identity=IDENTITY, subject="Deliver?", items=items, now=T0)

    ids = [i.item_id for i in store.items(record.id)]
    expected = "h:" + hashlib.sha256(PLANTED_EMAIL.encode()).hexdigest()[:24]
    assert ids[0] == expected
    assert ids[1].startswith("h:") and ids[1] != expected
    assert ids[2] == "plain-7"


def test_open_leaves_one_gate_audit_event_with_counts(
    store: Any, signer: LinkSigner, sink: MemoryAuditSink
) -> None:
    gate = _gate(store, signer, sink, routing=RoutingRule(below=0.5))
    items = [{"id": "a", "confidence": 0.9}, {"id": "b", "confidence": 0.1}]

    gate.open(identity=IDENTITY, subject="Deliver?", items=items, now=T0)

    [event] = sink.events
    assert event.step_kind == "gate"
    assert event.counts["items_reviewed"] == 1
    assert event.counts["items_passed"] == 1


# --- escalation and wakeups -------------------------------------------------------------------


def _escalating(store: Any, signer: LinkSigner, sink: Any, receiver: Any) -> Gate:
    return _gate(
        store,
        signer,
        sink,
        [_webhook(receiver)],
        assignees=["ana"],
        groups={"leads": ["bo", "cy"]},
        escalation=[Escalation(after_s=60, assignees=["group:leads"])],
        expires_after_s=3600,
    )


def test_escalation_notifies_the_new_group_once_and_widens_eligibility(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    gate = _escalating(store, signer, sink, notification_receiver)
    record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    assert gate.poll(record.id, now=T0 + timedelta(seconds=30)).escalation_level == 0
    for seconds in (61, 90, 120):
        polled = gate.poll(record.id, now=T0 + timedelta(seconds=seconds))

    assert polled.escalation_level == 1
    assert _events(notification_receiver) == ["gate.opened", "gate.escalated"]
    assert sorted(notification_receiver.requests[1][2]["links"]) == ["bo", "cy"]
    decided = gate.decide(record.id, reviewer="bo", option="approve", channel="api")
    assert decided.outcome == "approve"


def test_before_escalation_the_later_group_may_not_vote(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    gate = _escalating(store, signer, sink, notification_receiver)
    record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    with pytest.raises(GateVoteRefusedError):
        gate.decide(record.id, reviewer="bo", option="approve", channel="api")


def test_next_wakeup_is_the_next_escalation_then_the_expiry(
    store: Any, signer: LinkSigner, sink: Any, notification_receiver: Any
) -> None:
    gate = _escalating(store, signer, sink, notification_receiver)
    record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    assert gate.next_wakeup(record) == T0 + timedelta(seconds=60)
    escalated = gate.poll(record.id, now=T0 + timedelta(seconds=61))
    assert gate.next_wakeup(escalated) == T0 + timedelta(seconds=3600)


def test_next_wakeup_is_none_for_a_closed_gate(store: Any, signer: LinkSigner, sink: Any) -> None:
    gate = _gate(store, signer, sink)
    record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    decided = gate.decide(record.id, reviewer="ana", option="reject", channel="cli")

    assert gate.next_wakeup(decided) is None


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status", "outcome"),
    [
        (TimeoutAction.APPROVE, GateStatus.RESOLVED, "approve"),
        (TimeoutAction.REJECT, GateStatus.RESOLVED, "reject"),
        (TimeoutAction.FAIL, GateStatus.EXPIRED, None),
    ],
)
def test_poll_after_expiry_applies_the_timeout_action(
    store: Any,
    signer: LinkSigner,
    sink: Any,
    action: TimeoutAction,
    status: GateStatus,
    outcome: str | None,
) -> None:
    gate = _gate(store, signer, sink, expires_after_s=600, on_timeout=action)
    record = gate.open(identity=IDENTITY, subject="Ship it?", now=T0)

    assert gate.poll(record.id, now=T0 + timedelta(seconds=599)).is_open
    expired = gate.poll(record.id, now=T0 + timedelta(seconds=601))

    result = gate.outcome(expired)
    assert (result.status, result.outcome, result.channel, result.timed_out) == (
        status,
        outcome,
        "timeout",
        True,
    )


# --- decide, outcome, links, wait -------------------------------------------------------------


def test_the_outcome_counts_corrections_and_deciders(
    store: Any, signer: LinkSigner, sink: Any
) -> None:
    gate = _gate(store, signer, sink, required_approvals=2)
    items = [{"id": "a", "prediction": "cat"}, {"id": "b", "prediction": "dog"}]
    record = gate.open(identity=IDENTITY, subject="Labels ok?", items=items)
    store.correct_item(record.id, "a", label="lynx", reviewer="ana", channel="page")

    gate.decide(record.id, reviewer="ana", option="approve", channel="page")
    final = gate.decide(record.id, reviewer="bo", option="approve", channel="cli")

    result = gate.outcome(final)
    assert (result.corrections, result.decided_by, result.items_reviewed) == (1, ["ana", "bo"], 2)
    assert (result.channel, result.approved) == ("cli", True)


def test_decide_is_audited_with_the_reviewer_and_never_the_comment(
    store: Any, signer: LinkSigner, sink: MemoryAuditSink
) -> None:
    gate = _gate(store, signer, sink)
    record = gate.open(identity=IDENTITY, subject="Ship it?")

    gate.decide(record.id, reviewer="ana", option="approve", channel="cli", comment="tell no one")

    event = sink.events[-1]
    assert (event.step_kind, event.actor, event.identity.pipeline) == ("gate", "ana", "orders")
    assert event.attributes["gate.outcome"] == "approve"
    assert "tell no one" not in event.model_dump_json()


def test_no_personal_links_when_anyone_may_vote(store: Any, signer: LinkSigner, sink: Any) -> None:
    gate = _gate(store, signer, sink)
    record = gate.open(identity=IDENTITY, subject="Ship it?")

    assert gate.links(record) == {}
    assert list(gate.links(record, reviewers=["zed"])) == ["zed"]


def test_links_are_only_for_eligible_reviewers(store: Any, signer: LinkSigner, sink: Any) -> None:
    gate = _gate(store, signer, sink, assignees=["ana"])
    record = gate.open(identity=IDENTITY, subject="Ship it?")

    assert list(gate.links(record, reviewers=["ana", "mallory"])) == ["ana"]


def test_wait_returns_the_pending_outcome_when_its_timeout_passes(
    store: Any, signer: LinkSigner, sink: Any
) -> None:
    gate = _gate(store, signer, sink, poll_interval_s=0.01)
    record = gate.open(identity=IDENTITY, subject="Ship it?")

    result = gate.wait(record.id, timeout_s=0.05)

    assert (result.status, result.outcome) == (GateStatus.PENDING, None)


def test_wait_returns_the_decision(store: Any, signer: LinkSigner, sink: Any) -> None:
    gate = _gate(store, signer, sink, poll_interval_s=0.01)
    record = gate.open(identity=IDENTITY, subject="Ship it?")
    gate.decide(record.id, reviewer="ana", option="reject", channel="cli")

    result = gate.wait(record.id, timeout_s=5)

    assert (result.status, result.outcome, result.approved) == (
        GateStatus.RESOLVED,
        "reject",
        False,
    )
