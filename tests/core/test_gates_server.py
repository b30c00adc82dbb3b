"""The review page over real HTTP: uvicorn on a free port (``gate_server``), a SQLite store, httpx.

Links are signed by the server's own signer; forged, expired and replayed links, GETs, closed
gates and CSRF are checked against what the store holds afterwards (nothing recorded when refused).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from guardflow.errors import ConfigurationError, GateTokenError
from guardflow.gates.models import GateItem, GatePolicy, GateRecord, GateStatus
from guardflow.gates.tokens import LinkSigner

if TYPE_CHECKING:
    from guardflow.gates.store import GateStore
    from guardflow.testing.gate_fixtures import GateServer

SUBJECT = "Ship churn model v7 scores"


def _open(
    store: GateStore,
    *,
    policy: dict[str, Any] | None = None,
    items: list[GateItem] | None = None,
    body: str = "Scores for **March**.",
) -> str:
    gate_id = secrets.token_hex(16)
    record = GateRecord(
        id=gate_id,
        subject=SUBJECT,
        body=body,
        context={"rows": 120, "model": "churn-v7"},
        policy=GatePolicy.model_validate(policy or {"assignees": ["ana", "bob"]}),
        created_at=datetime.now(timezone.utc),
        expires_at=datetime.now(timezone.utc) + timedelta(hours=1),
        pipeline="churn",
        run_id="run-1",
        task_id="gate",
    )
    store.create(record, [i.model_copy(update={"gate_id": gate_id}) for i in items or []])
    return gate_id


def _items() -> list[GateItem]:
    return [
        GateItem(gate_id="-", item_id="i1", data={"text": "late"}, prediction="dog", score=0.4),
        GateItem(gate_id="-", item_id="i2", data={"text": "ok"}, prediction="cat", score=0.5),
    ]


def _token(link: str) -> str:
    return link.rsplit("/l/", 1)[1]


def _nothing_recorded(store: GateStore, gate_id: str) -> None:
    record = store.get(gate_id)
    assert record.status is GateStatus.PENDING
    assert record.votes == []
    assert store.corrections(gate_id) == 0


def test_healthz_answers_ok(gate_server: GateServer) -> None:
    response = httpx.get(f"{gate_server.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_pages_carry_security_headers(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    response = httpx.get(gate_server.link(gate_id, "ana"))
    assert response.status_code == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp


def test_get_and_head_on_a_link_never_decide(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store, items=_items())
    link = gate_server.link(gate_id, "ana", option="approve")
    for _ in range(5):
        page = httpx.get(link)
        assert page.status_code == 200
        assert SUBJECT in page.text
    for _ in range(2):
        assert httpx.head(link).status_code == 200
    _nothing_recorded(gate_server.store, gate_id)
    assert [e["kind"] for e in gate_server.store.history(gate_id)] == ["opened"]


def test_link_post_records_the_vote_on_channel_link(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    response = httpx.post(
        gate_server.link(gate_id, "ana"), data={"option": "approve", "comment": "looks right"}
    )
    assert response.status_code == 200
    assert "Vote recorded" in response.text
    record = gate_server.store.get(gate_id)
    assert record.status is GateStatus.RESOLVED
    assert record.outcome == "approve"
    [vote] = record.votes
    assert (vote.reviewer, vote.option, vote.channel) == ("ana", "approve", "link")
    assert vote.comment == "looks right"


def test_forged_link_is_refused_and_records_nothing(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    token = _token(gate_server.link(gate_id, "ana"))
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for response in (
        httpx.get(f"{gate_server.url}/l/{forged}"),
        httpx.post(f"{gate_server.url}/l/{forged}", data={"option": "approve"}),
    ):
        assert response.status_code == 403
        assert "forged or damaged" in response.text
        assert forged not in response.text
    _nothing_recorded(gate_server.store, gate_id)


def test_link_signed_with_another_key_is_forged(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    other = LinkSigner(secrets.token_bytes(48)).issue(gate_id, "ana", ttl_s=600)
    response = httpx.post(f"{gate_server.url}/l/{other}", data={"option": "approve"})
    assert response.status_code == 403
    assert "forged or damaged" in response.text
    _nothing_recorded(gate_server.store, gate_id)


def test_expired_link_is_refused_as_expired(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    past = datetime.now(timezone.utc) - timedelta(hours=2)
    token = gate_server.signer.issue(gate_id, "ana", ttl_s=60, now=past)
    for response in (
        httpx.get(f"{gate_server.url}/l/{token}"),
        httpx.post(f"{gate_server.url}/l/{token}", data={"option": "approve"}),
    ):
        assert response.status_code == 403
        assert "expired" in response.text
        assert token not in response.text
    _nothing_recorded(gate_server.store, gate_id)


def test_replayed_link_is_refused_as_already_used(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store, policy={"required_approvals": 2})
    link = gate_server.link(gate_id, "ana")
    assert httpx.post(link, data={"option": "approve"}).status_code == 200
    replay = httpx.post(link, data={"option": "reject"})
    assert replay.status_code == 403
    assert "already used" in replay.text
    record = gate_server.store.get(gate_id)
    assert [(v.reviewer, v.option) for v in record.votes] == [("ana", "approve")]
    assert record.status is GateStatus.PENDING


def test_link_whose_nonce_was_consumed_records_nothing(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    token = _token(gate_server.link(gate_id, "ana"))
    claims = gate_server.signer.verify(token)
    gate_server.store.consume_token(claims.nonce, gate_id=gate_id, reviewer="ana")
    response = httpx.post(f"{gate_server.url}/l/{token}", data={"option": "approve"})
    assert response.status_code == 403
    assert "already used" in response.text
    _nothing_recorded(gate_server.store, gate_id)


def test_closed_gate_answers_409_and_keeps_the_link_unused(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    gate_server.store.decide(gate_id, reviewer="bob", option="reject", channel="cli")
    token = _token(gate_server.link(gate_id, "ana"))
    response = httpx.post(f"{gate_server.url}/l/{token}", data={"option": "approve"})
    assert response.status_code == 409
    assert "Nothing was recorded" in response.text
    record = gate_server.store.get(gate_id)
    assert [v.reviewer for v in record.votes] == ["bob"]
    assert record.outcome == "reject"
    # The nonce was not consumed: the store still accepts it once.
    gate_server.store.consume_token(
        gate_server.signer.verify(token).nonce, gate_id=gate_id, reviewer="ana"
    )


def test_refused_vote_does_not_burn_the_link(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    link = gate_server.link(gate_id, "mallory")
    response = httpx.post(link, data={"option": "approve"})
    assert response.status_code == 403
    assert "refused" in response.text
    _nothing_recorded(gate_server.store, gate_id)
    claims = gate_server.signer.verify(_token(link))
    gate_server.store.consume_token(claims.nonce, gate_id=gate_id, reviewer="mallory")
    with pytest.raises(GateTokenError):
        gate_server.store.consume_token(claims.nonce, gate_id=gate_id, reviewer="mallory")


def test_link_with_an_option_only_decides_that_option(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    link = gate_server.link(gate_id, "ana", option="reject")
    page = httpx.get(link)
    assert 'value="reject"' in page.text
    assert 'value="approve"' not in page.text
    assert httpx.post(link, data={"option": "approve"}).status_code == 403
    _nothing_recorded(gate_server.store, gate_id)


def test_label_correction_is_stored_only_for_changed_items(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store, items=_items())
    link = gate_server.link(gate_id, "ana")
    page = httpx.get(link)
    assert 'name="label__i1"' in page.text
    response = httpx.post(link, data={"option": "approve", "label__i1": "cat", "label__i2": "cat"})
    assert response.status_code == 200
    items = {i.item_id: i for i in gate_server.store.items(gate_id)}
    assert (items["i1"].label, items["i1"].corrected_by) == ("cat", "ana")
    assert items["i2"].label is None and items["i2"].corrected_by is None
    assert gate_server.store.corrections(gate_id) == 1
    assert gate_server.store.get(gate_id).votes[0].channel == "link"


def test_pages_need_the_identity_header(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    for path in ("/", "/history", f"/gates/{gate_id}"):
        response = httpx.get(f"{gate_server.url}{path}")
        assert response.status_code == 401
        assert "personal link" in response.text
    response = httpx.post(f"{gate_server.url}/gates/{gate_id}/decide", data={"option": "approve"})
    assert response.status_code == 401
    _nothing_recorded(gate_server.store, gate_id)


def test_pending_list_shows_the_reviewers_gates(gate_server: GateServer) -> None:
    mine = _open(gate_server.store)
    theirs = _open(gate_server.store, policy={"assignees": ["carol"]})
    response = httpx.get(f"{gate_server.url}/", headers=gate_server.headers("ana"))
    assert response.status_code == 200
    assert f"/gates/{mine}" in response.text
    assert f"/gates/{theirs}" not in response.text


def test_page_decides_with_identity_header_and_csrf(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    headers = gate_server.headers("bob")
    page = httpx.get(f"{gate_server.url}/gates/{gate_id}", headers=headers)
    assert page.status_code == 200
    csrf = gate_server.signer.csrf_token(gate_id, "bob")
    assert f'value="{csrf}"' in page.text
    response = httpx.post(
        f"{gate_server.url}/gates/{gate_id}/decide",
        headers=headers,
        data={"option": "reject", "csrf": csrf},
    )
    assert response.status_code == 200
    record = gate_server.store.get(gate_id)
    assert (record.outcome, record.votes[0].reviewer, record.votes[0].channel) == (
        "reject",
        "bob",
        "page",
    )


@pytest.mark.parametrize("csrf", [None, "c1.forged", "other-gate"])
def test_page_post_without_valid_csrf_is_refused(gate_server: GateServer, csrf: str | None) -> None:
    gate_id = _open(gate_server.store)
    data = {"option": "approve"}
    if csrf == "other-gate":
        data["csrf"] = gate_server.signer.csrf_token(_open(gate_server.store), "ana")
    elif csrf is not None:
        data["csrf"] = csrf
    response = httpx.post(
        f"{gate_server.url}/gates/{gate_id}/decide", headers=gate_server.headers("ana"), data=data
    )
    assert response.status_code == 403
    _nothing_recorded(gate_server.store, gate_id)


def test_csrf_of_another_reviewer_is_refused(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store)
    response = httpx.post(
        f"{gate_server.url}/gates/{gate_id}/decide",
        headers=gate_server.headers("ana"),
        data={"option": "approve", "csrf": gate_server.signer.csrf_token(gate_id, "bob")},
    )
    assert response.status_code == 403
    _nothing_recorded(gate_server.store, gate_id)


def test_history_lists_decided_gates(gate_server: GateServer) -> None:
    decided, pending = _open(gate_server.store), _open(gate_server.store)
    gate_server.store.decide(decided, reviewer="ana", option="approve", channel="cli")
    response = httpx.get(f"{gate_server.url}/history", headers=gate_server.headers("ana"))
    assert response.status_code == 200
    assert f"/gates/{decided}" in response.text
    assert f"/gates/{pending}" not in response.text


def test_body_markdown_is_rendered_without_raw_html(gate_server: GateServer) -> None:
    gate_id = _open(gate_server.store, body="<script>alert(1)</script> **bold** `x<y`\n\n- one")
    page = httpx.get(f"{gate_server.url}/gates/{gate_id}", headers=gate_server.headers("ana"))
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "<strong>bold</strong>" in page.text
    assert "<code>x&lt;y</code>" in page.text
    assert "<ul><li>one</li></ul>" in page.text


def test_access_log_never_contains_a_token_or_comment(
    gate_server: GateServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gate_id = _open(gate_server.store)
    link = gate_server.link(gate_id, "ana")
    httpx.get(link)
    httpx.post(link, data={"option": "approve", "comment": "secret-comment-7731"})
    # The test's own httpx client logs the URLs it requests; the server's loggers must not.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert "/l/<redacted>" in logged
    assert _token(link) not in logged
    assert "secret-comment-7731" not in logged


def test_serve_without_signing_key_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from guardflow.gates.server import serve

    monkeypatch.delenv("GUARDFLOW_GATES_SIGNING_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="GUARDFLOW_GATES_SIGNING_KEY"):
        serve(store_url=f"sqlite:///{tmp_path / 'g.db'}", port=0)
