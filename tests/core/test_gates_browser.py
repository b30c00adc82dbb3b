"""The review page driven by a real browser: headless Debian Chromium against ``gate_server``.

A reviewer opens a personal link, sees the confirmation page, corrects one item's label and
clicks Approve; the store then holds the vote (channel ``link``) and the correction.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from guardflow.gates.models import GateItem, GatePolicy, GateRecord, GateStatus

if TYPE_CHECKING:
    from guardflow.gates.store import GateStore
    from guardflow.testing.gate_fixtures import GateServer

SUBJECT = "Deliver 3 low-confidence predictions"


def _open(store: GateStore) -> str:
    gate_id = secrets.token_hex(16)
    now = datetime.now(timezone.utc)
    record = GateRecord(
        id=gate_id,
        subject=SUBJECT,
        body="Predictions under **0.8** confidence need a look.",
        context={"model": "intent-v3", "rows": 250},
        policy=GatePolicy(assignees=["ana", "bob"]),
        created_at=now,
        expires_at=now + timedelta(hours=4),
        pipeline="support_triage",
        run_id="manual__2026-03-01",
        task_id="review",
    )
    items = [
        GateItem(gate_id=gate_id, item_id=f"t{n}", data={"text": text}, prediction=label, score=s)
        for n, (text, label, s) in enumerate(
            [("refund please", "billing", 0.41), ("app crashes", "bug", 0.62)]
        )
    ]
    store.create(record, items)
    return gate_id


def test_personal_link_decides_in_chromium(gate_server: GateServer, chromium_page: Any) -> None:
    gate_id = _open(gate_server.store)
    page = chromium_page
    page.goto(gate_server.link(gate_id, "ana"))
    assert page.locator("h1").inner_text() == SUBJECT
    # Opening the link decided nothing.
    assert gate_server.store.get(gate_id).votes == []

    page.get_by_label("Label for item t1").fill("crash")
    page.get_by_label("Comment").fill("t1 is a crash report")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Vote recorded"
    assert "1 label correction saved" in page.locator("main").inner_text()

    record = gate_server.store.get(gate_id)
    assert (record.status, record.outcome) == (GateStatus.RESOLVED, "approve")
    [vote] = record.votes
    assert (vote.reviewer, vote.channel, vote.comment) == ("ana", "link", "t1 is a crash report")
    items = {i.item_id: i for i in gate_server.store.items(gate_id)}
    assert (items["t1"].label, items["t1"].corrected_by) == ("crash", "ana")
    assert items["t0"].label is None


def test_review_page_decides_behind_a_proxy_in_chromium(
    gate_server: GateServer, chromium_page: Any
) -> None:
    gate_id = _open(gate_server.store)
    page = chromium_page
    page.set_extra_http_headers(gate_server.headers("bob"))
    page.goto(f"{gate_server.url}/")
    page.get_by_role("link", name=SUBJECT).click()
    page.get_by_role("button", name="Reject").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Vote recorded"
    record = gate_server.store.get(gate_id)
    assert (record.outcome, record.votes[0].reviewer, record.votes[0].channel) == (
        "reject",
        "bob",
        "page",
    )
