"""GateStore semantics on a real SQLite file: quorum, eligibility, expiry, claims, items, export."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from guardflow.errors import (
    GateClosedError,
    GateError,
    GateNotFoundError,
    GateTokenError,
    GateVoteRefusedError,
)
from guardflow.gates._schema import safe_url
from guardflow.gates.models import (
    Escalation,
    GateItem,
    GatePolicy,
    GateRecord,
    GateStatus,
    outcome_of,
)
from guardflow.gates.store import GateStore

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def make_record(
    gate_id: str = "g1", *, expires_s: float | None = 3600, **policy: Any
) -> GateRecord:
    pol = GatePolicy(**policy)
    return GateRecord(
        id=gate_id,
        subject=f"Ship {gate_id}?",
        body="**body**",
        context={"rows": 3},
        policy=pol,
        pipeline="dag_a",
        run_id="run_1",
        task_id="gate",
        created_at=T0,
        expires_at=T0 + timedelta(seconds=expires_s) if expires_s else None,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GateStore]:
    """The store on a SQLite file, and on a real PostgreSQL server (several workers' choice)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gates.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = GateStore(url)
    yield s
    s.dispose()


def snapshot(store: GateStore, gate_id: str) -> tuple[Any, ...]:
    rec = store.get(gate_id, now=T0)
    return (rec.model_dump(), store.history(gate_id), store.items(gate_id))


# -- create / get -----------------------------------------------------------------------------


def test_create_then_create_again_returns_stored_gate_without_overwriting(store: GateStore) -> None:
    first, created = store.create(make_record())
    assert created is True
    other = make_record().model_copy(update={"subject": "changed", "body": "other"})
    again, created_again = store.create(other)
    assert created_again is False
    assert again.subject == first.subject == "Ship g1?"
    assert again.body == "**body**"
    assert [e["kind"] for e in store.history("g1")] == ["opened"]


def test_record_round_trips_with_tz_aware_utc_datetimes(store: GateStore) -> None:
    plus2 = timezone(timedelta(hours=2))
    rec = make_record().model_copy(update={"created_at": T0.astimezone(plus2)})
    stored, _ = store.create(rec)
    assert stored.created_at == T0 and stored.created_at.tzinfo == timezone.utc
    assert stored.expires_at == T0 + timedelta(hours=1)
    assert stored.policy == rec.policy
    assert stored.context == {"rows": 3}
    decided = store.decide("g1", reviewer="ana", option="approve", channel="cli", now=T0)
    assert decided.votes[0].decided_at.tzinfo == timezone.utc
    assert decided.resolved_at == T0


@pytest.mark.parametrize("call", ["get", "decide", "items", "history", "escalate", "claim"])
def test_unknown_gate_raises_not_found_with_id_and_advice(store: GateStore, call: str) -> None:
    actions = {
        "get": lambda: store.get("nope"),
        "decide": lambda: store.decide("nope", reviewer="ana", option="approve", channel="cli"),
        "items": lambda: store.items("nope"),
        "history": lambda: store.history("nope"),
        "escalate": lambda: store.escalate("nope", 1),
        "claim": lambda: store.claim_notification("nope", "opened"),
    }
    with pytest.raises(GateNotFoundError) as info:
        actions[call]()
    assert info.value.gate_id == "nope"
    assert "'nope'" in str(info.value) and "GUARDFLOW_GATES_DB" in str(info.value)


# -- votes ------------------------------------------------------------------------------------


def test_quorum_two_of_three_counts_distinct_reviewers(store: GateStore) -> None:
    store.create(make_record(required_approvals=2, assignees=["ana", "bob", "cy"]))
    rec = store.decide("g1", reviewer="ana", option="approve", channel="link", now=T0)
    assert rec.status is GateStatus.PENDING
    with pytest.raises(GateVoteRefusedError, match="'ana' already voted"):
        store.decide("g1", reviewer="ana", option="approve", channel="page", now=T0)
    assert store.get("g1", now=T0).status is GateStatus.PENDING
    assert len(store.get("g1", now=T0).votes) == 1
    rec = store.decide("g1", reviewer="bob", option="approve", channel="cli", now=T0)
    assert rec.status is GateStatus.RESOLVED
    assert rec.outcome == "approve" and rec.resolution_channel == "cli"
    assert outcome_of(rec).decided_by == ["ana", "bob"]


def test_ineligible_reviewer_is_refused_and_nothing_is_stored(store: GateStore) -> None:
    store.create(make_record(assignees=["ana"]))
    before = snapshot(store, "g1")
    with pytest.raises(GateVoteRefusedError) as info:
        store.decide("g1", reviewer="mallory", option="approve", channel="link", now=T0)
    assert "'mallory'" in str(info.value) and "'g1'" in str(info.value)
    assert snapshot(store, "g1") == before


def test_group_membership_grants_eligibility(store: GateStore) -> None:
    store.create(make_record(assignees=["group:ml"], groups={"ml": ["ana", "bo"]}))
    with pytest.raises(GateVoteRefusedError):
        store.decide("g1", reviewer="zed", option="approve", channel="page", now=T0)
    rec = store.decide("g1", reviewer="bo", option="approve", channel="page", now=T0)
    assert rec.outcome == "approve" and rec.votes[0].reviewer == "bo"


def test_escalation_level_widens_eligibility_once(store: GateStore) -> None:
    store.create(
        make_record(assignees=["ana"], escalation=[Escalation(after_s=60, assignees=["cy"])])
    )
    with pytest.raises(GateVoteRefusedError):
        store.decide("g1", reviewer="cy", option="approve", channel="link", now=T0)
    assert store.escalate("g1", 1, now=T0) is True
    assert store.escalate("g1", 1, now=T0) is False
    assert store.get("g1", now=T0).escalation_level == 1
    rec = store.decide("g1", reviewer="cy", option="approve", channel="link", now=T0)
    assert rec.status is GateStatus.RESOLVED
    assert [e["kind"] for e in store.history("g1")].count("escalated") == 1


def test_unknown_option_is_refused(store: GateStore) -> None:
    store.create(make_record())
    with pytest.raises(GateVoteRefusedError, match="option 'maybe'"):
        store.decide("g1", reviewer="ana", option="maybe", channel="cli", now=T0)
    assert store.get("g1", now=T0).votes == []


def test_reject_vote_resolves_with_its_own_quorum(store: GateStore) -> None:
    store.create(make_record(required_approvals=3))
    rec = store.decide("g1", reviewer="ana", option="reject", channel="cli", now=T0)
    assert rec.status is GateStatus.RESOLVED and rec.outcome == "reject"


def test_decision_on_resolved_gate_is_refused_and_changes_nothing(store: GateStore) -> None:
    store.create(make_record())
    store.decide("g1", reviewer="ana", option="approve", channel="cli", comment="ok", now=T0)
    before = snapshot(store, "g1")
    with pytest.raises(GateClosedError) as info:
        store.decide("g1", reviewer="bob", option="reject", channel="link", comment="no", now=T0)
    assert info.value.gate_id == "g1" and "resolved" in str(info.value)
    assert snapshot(store, "g1") == before


def test_decision_after_expiry_is_refused_and_expiry_is_kept(store: GateStore) -> None:
    store.create(make_record(expires_s=60, on_timeout="fail"))
    late = T0 + timedelta(seconds=61)
    with pytest.raises(GateClosedError, match="expired"):
        store.decide("g1", reviewer="ana", option="approve", channel="link", now=late)
    rec = store.get("g1", now=T0)  # "now" before expiry: the stored expiry stands
    assert rec.status is GateStatus.EXPIRED and rec.votes == []
    assert [e["kind"] for e in store.history("g1")] == ["opened", "expired"]


def test_comment_is_stored_but_never_in_history_or_errors(store: GateStore) -> None:
    store.create(make_record(required_approvals=2))
    secret_comment = "customer 4111-1111 looks odd"
    store.decide(
        "g1", reviewer="ana", option="approve", channel="page", comment=secret_comment, now=T0
    )
    assert store.get("g1").votes[0].comment == secret_comment
    with pytest.raises(GateVoteRefusedError) as info:
        store.decide("g1", reviewer="ana", option="approve", channel="page", comment=secret_comment)
    assert secret_comment not in str(info.value)
    assert secret_comment not in repr(store.history("g1"))
    assert secret_comment not in repr(store.decisions_dataset())


# -- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "options", "rejects", "status", "outcome"),
    [
        ("approve", ["approve", "reject"], ["reject"], GateStatus.RESOLVED, "approve"),
        ("reject", ["approve", "reject"], ["reject"], GateStatus.RESOLVED, "reject"),
        ("fail", ["approve", "reject"], ["reject"], GateStatus.EXPIRED, None),
        ("reject", ["ship", "hold"], [], GateStatus.EXPIRED, None),
        ("approve", ["stop", "ship_a", "ship_b"], ["stop"], GateStatus.RESOLVED, "ship_a"),
    ],
)
def test_on_timeout_action_is_applied_lazily_on_read(
    store: GateStore,
    action: str,
    options: list[str],
    rejects: list[str],
    status: GateStatus,
    outcome: str | None,
) -> None:
    store.create(
        make_record(expires_s=60, on_timeout=action, options=options, reject_options=rejects)
    )
    assert store.get("g1", now=T0 + timedelta(seconds=59)).status is GateStatus.PENDING
    rec = store.get("g1", now=T0 + timedelta(seconds=60))
    assert (rec.status, rec.outcome) == (status, outcome)
    assert rec.resolution_channel == "timeout" and rec.resolved_at == T0 + timedelta(seconds=60)
    assert outcome_of(rec).timed_out is True


def test_expire_due_reports_each_gate_once_and_list_applies_expiry(store: GateStore) -> None:
    store.create(make_record("short", expires_s=10))
    store.create(make_record("long", expires_s=1000))
    store.create(make_record("never", expires_s=None))
    later = T0 + timedelta(seconds=11)
    assert [r.id for r in store.expire_due(now=later)] == ["short"]
    assert store.expire_due(now=later) == []
    long_ago = datetime(2020, 1, 1, tzinfo=timezone.utc)
    past = make_record("past").model_copy(
        update={"created_at": long_ago, "expires_at": long_ago + timedelta(seconds=1)}
    )
    store.create(past)  # list() below runs at the real clock, long after this expiry
    pending = store.list(status=GateStatus.PENDING)
    assert {r.id for r in pending} == {"long", "never"}
    assert store.get("past").resolution_channel == "timeout"


# -- list ---------------------------------------------------------------------------------------


def test_list_filters_by_reviewer_pipeline_and_status_newest_first(store: GateStore) -> None:
    for i, name in enumerate(["a", "b", "c"]):
        rec = make_record(name, expires_s=None, assignees=["ana", "bob"], required_approvals=2)
        store.create(rec.model_copy(update={"created_at": T0 + timedelta(minutes=i)}))
    other = make_record("d", expires_s=None).model_copy(update={"pipeline": "dag_b"})
    store.create(other)
    store.decide("b", reviewer="ana", option="approve", channel="cli")
    assert [r.id for r in store.list(pipeline="dag_a")] == ["c", "b", "a"]
    assert [r.id for r in store.list(pipeline="dag_a", limit=2)] == ["c", "b"]
    assert [r.id for r in store.list(reviewer="ana", pipeline="dag_a")] == ["c", "a"]
    assert [r.id for r in store.list(reviewer="zed")] == ["d"]  # d: anyone may vote
    store.decide("a", reviewer="ana", option="reject", channel="cli")
    assert [r.id for r in store.list(status=GateStatus.RESOLVED)] == ["a"]


# -- notifications, tokens, external --------------------------------------------------------------


def test_claim_notification_true_exactly_once_under_20_threads(store: GateStore) -> None:
    store.create(make_record())
    barrier = threading.Barrier(20)
    results: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        barrier.wait()
        ok = store.claim_notification("g1", "opened")
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=claim) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 19 + [True]


def test_failed_claim_can_be_claimed_again_and_sent_cannot(store: GateStore) -> None:
    store.create(make_record())
    assert store.claim_notification("g1", "opened:slack") is True
    store.finish_notification("g1", "opened:slack", ok=False, error="HTTP 503")
    assert store.notifications("g1")[0]["status"] == "failed"
    assert store.claim_notification("g1", "opened:slack") is True
    assert store.claim_notification("g1", "opened:slack") is False
    store.finish_notification("g1", "opened:slack", ok=True)
    assert store.claim_notification("g1", "opened:slack") is False
    (note,) = store.notifications("g1")
    assert (note["key"], note["status"], note["attempts"]) == ("opened:slack", "sent", 2)
    assert note["updated_at"].tzinfo == timezone.utc
    assert [e["kind"] for e in store.history("g1")] == ["opened", "notified"]


def test_consume_token_only_once(store: GateStore) -> None:
    store.create(make_record())
    store.consume_token("n-1", gate_id="g1", reviewer="ana")
    store.consume_token("n-2", gate_id="g1", reviewer="ana")
    with pytest.raises(GateTokenError) as info:
        store.consume_token("n-1", gate_id="g1", reviewer="ana")
    assert "already used" in str(info.value) and "n-1" not in str(info.value)


def test_set_external_merges(store: GateStore) -> None:
    store.create(make_record())
    store.set_external("g1", flow_run_id="fr-1")
    rec = store.set_external("g1", pause_key="k2")
    assert rec.external == {"flow_run_id": "fr-1", "pause_key": "k2"}
    assert store.get("g1").external == rec.external


# -- items ------------------------------------------------------------------------------------


def _items(gate_id: str = "g1") -> list[GateItem]:
    return [
        GateItem(gate_id=gate_id, item_id="i2", data={"text": "b"}, prediction="cat", score=0.4),
        GateItem(gate_id=gate_id, item_id="i1", data={"text": "a"}, prediction="dog", score=0.1),
    ]


def test_correct_item_only_while_pending_and_by_eligible_reviewers(store: GateStore) -> None:
    rec, _ = store.create(make_record(assignees=["ana"]), _items())
    assert rec.item_count == 2
    assert [i.item_id for i in store.items("g1")] == ["i2", "i1"]
    with pytest.raises(GateVoteRefusedError):
        store.correct_item("g1", "i1", label="cat", reviewer="zed", channel="page", now=T0)
    with pytest.raises(GateNotFoundError, match="no review item"):
        store.correct_item("g1", "zz", label="cat", reviewer="ana", channel="page", now=T0)
    item = store.correct_item("g1", "i1", label="cat", reviewer="ana", channel="page", now=T0)
    assert (item.label, item.corrected_by, item.corrected_at) == ("cat", "ana", T0)
    assert store.corrections("g1") == 1
    store.decide("g1", reviewer="ana", option="approve", channel="page", now=T0)
    with pytest.raises(GateClosedError):
        store.correct_item("g1", "i2", label="dog", reviewer="ana", channel="page", now=T0)
    assert store.items("g1")[0].label is None
    assert store.corrections("g1") == 1


def test_decisions_dataset_has_one_row_per_item_and_per_gate_without_items(
    store: GateStore,
) -> None:
    store.create(make_record("g1"), _items("g1"))
    store.create(make_record("g2"))
    store.create(make_record("g3").model_copy(update={"pipeline": "other"}))
    store.correct_item("g1", "i1", label="cat", reviewer="ana", channel="link", now=T0)
    store.decide("g1", reviewer="ana", option="approve", channel="link", now=T0)
    rows = store.decisions_dataset(pipeline="dag_a")
    assert [(r["gate_id"], r["item_id"]) for r in rows] == [
        ("g1", "i2"),
        ("g1", "i1"),
        ("g2", None),
    ]
    first, second, bare = rows
    assert (second["label"], second["corrected"], second["corrected_by"]) == ("cat", True, "ana")
    assert (first["label"], first["corrected"], first["prediction"]) == (None, False, "cat")
    assert second["outcome"] == "approve" and second["decided_by"] == ["ana"]
    assert second["resolved_at"] == T0 and second["channel"] == "link"
    assert bare["outcome"] is None and bare["item_id"] is None
    assert {r["gate_id"] for r in store.decisions_dataset(gate_ids=["g3"])} == {"g3"}
    expected = {
        "gate_id", "pipeline", "run_id", "task_id", "item_id", "prediction", "score", "label",
        "corrected", "corrected_by", "corrected_at", "outcome", "decided_by", "resolved_at",
        "channel",
    }  # fmt: skip
    assert expected <= set(first)


def test_gate_created_resolved_by_routing_records_both_events(store: GateStore) -> None:
    rec = make_record().model_copy(
        update={
            "status": GateStatus.RESOLVED,
            "outcome": "approve",
            "resolved_at": T0,
            "resolution_channel": "routing",
            "passed_count": 5,
        }
    )
    stored, _ = store.create(rec)
    assert (stored.status, stored.passed_count) == (GateStatus.RESOLVED, 5)
    assert [(e["kind"], e["channel"]) for e in store.history("g1")] == [
        ("opened", "cli"),
        ("resolved", "routing"),
    ]
    with pytest.raises(GateClosedError):
        store.decide("g1", reviewer="ana", option="reject", channel="cli")


# -- URLs -------------------------------------------------------------------------------------


def test_default_url_from_env_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUARDFLOW_GATES_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    s = GateStore()
    assert (tmp_path / "home" / ".guardflow" / "gates.db").exists()
    assert s.url.endswith("/home/.guardflow/gates.db")
    s.dispose()
    monkeypatch.setenv("GUARDFLOW_GATES_DB", f"sqlite:///{tmp_path / 'env.db'}")
    s2 = GateStore()
    assert s2.url == f"sqlite:///{tmp_path / 'env.db'}"
    s2.dispose()


def test_url_never_shows_password(postgres_url: str) -> None:
    url = "postgresql+psycopg://ana:s3cr3t-pw@127.0.0.1:9/gates"  # nothing listens on port 9
    assert "s3cr3t-pw" not in safe_url(url) and "ana:***@" in safe_url(url)
    with pytest.raises(GateError) as err:
        GateStore(url)
    assert err.value.retryable and "s3cr3t-pw" not in str(err.value)
    assert "127.0.0.1:9" in str(err.value)
    # A reachable server (trust auth ignores the password): the store's URL still hides it.
    reachable = postgres_url.replace("postgres@", "postgres:s3cr3t-pw@")
    store = GateStore(reachable)
    try:
        assert "s3cr3t-pw" not in store.url and "postgres:***@" in store.url
    finally:
        store.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    store = GateStore(f"sqlite:///{tmp_path / 'gates.db'}")

    store.create(make_record())
    con = sqlite3.connect(tmp_path / "gates.db")
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
