"""`guardflow gates` as a user runs it: a real process on a real SQLite store, exit codes, output.

Each test runs ``python -m guardflow gates ...`` with ``GUARDFLOW_GATES_DB`` pointing at the test's
own store, and checks what the store holds afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from guardflow.gates.models import GateItem, GatePolicy, GateRecord, GateStatus
from guardflow.gates.store import GateStore
from guardflow.gates.tokens import LinkSigner
from guardflow.testing._ports import free_port

KEY = secrets.token_urlsafe(48)


@dataclass
class Run:
    """The outcome of one ``guardflow`` process."""

    code: int
    out: str
    err: str


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gates.db'}"


@pytest.fixture
def store(db: str) -> Any:
    s = GateStore(db)
    yield s
    s.dispose()


def _env(db: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDFLOW_GATES")}
    base.pop("GUARDFLOW_REVIEWER", None)
    return {**base, "GUARDFLOW_GATES_DB": db, **extra}


def _cli(db: str, *args: str, **env: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "guardflow", "gates", *args],
        env=_env(db, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _open(store: GateStore, policy: dict[str, Any] | None = None, *, items: bool = False) -> str:
    gate_id = secrets.token_hex(16)
    now = datetime.now(timezone.utc)
    record = GateRecord(
        id=gate_id,
        subject="Deliver scored leads",
        body="120 rows scored.",
        context={"rows": 120},
        policy=GatePolicy.model_validate(policy or {"assignees": ["ana", "bob"]}),
        created_at=now,
        expires_at=now + timedelta(hours=1),
        pipeline="leads",
        run_id="r1",
        task_id="gate",
    )
    rows = [
        GateItem(gate_id=gate_id, item_id=f"i{n}", data={"n": n}, prediction="hot", score=0.3)
        for n in range(2)
    ]
    store.create(record, rows if items else [])
    return gate_id


def test_list_json_is_machine_readable(db: str, store: GateStore) -> None:
    pending, done = _open(store), _open(store)
    store.decide(done, reviewer="ana", option="approve", channel="cli")
    run = _cli(db, "list", "--format", "json")
    assert run.code == 0, run.err
    rows = json.loads(run.out)
    assert [r["id"] for r in rows] == [pending]
    assert rows[0]["status"] == "pending" and rows[0]["quorum"] == {"approve": 1, "reject": 1}
    every = json.loads(_cli(db, "list", "--status", "all", "--format", "json").out)
    assert {r["id"] for r in every} == {pending, done}


def test_list_text_with_no_gates(db: str) -> None:
    run = _cli(db, "list")
    assert run.code == 0
    assert "no pending gates" in run.out


def test_show_prints_context_items_votes_and_history(db: str, store: GateStore) -> None:
    gate_id = _open(store, {"required_approvals": 2}, items=True)
    store.decide(gate_id, reviewer="ana", option="approve", channel="link", comment="fine by me")
    run = _cli(db, "show", gate_id)
    assert run.code == 0, run.err
    for text in (
        "Deliver scored leads",
        "rows: 120",
        "items: 2 to review",
        "ana: approve via link",
    ):
        assert text in run.out
    assert "fine by me" in run.out
    assert "opened" in run.out and "voted ana via link" in run.out


def test_show_unknown_gate_exits_1(db: str) -> None:
    run = _cli(db, "show", "0" * 32)
    assert run.code == 1
    assert "error:" in run.err


def test_approve_records_a_cli_vote(db: str, store: GateStore) -> None:
    gate_id = _open(store)
    run = _cli(db, "approve", gate_id, "--comment", "checked", GUARDFLOW_REVIEWER="bob")
    assert run.code == 0, run.err
    assert "resolved: approve" in run.out
    record = store.get(gate_id)
    [vote] = record.votes
    assert (vote.reviewer, vote.option, vote.channel, vote.comment) == (
        "bob",
        "approve",
        "cli",
        "checked",
    )


def test_reject_with_reviewer_flag(db: str, store: GateStore) -> None:
    gate_id = _open(store)
    run = _cli(db, "reject", gate_id, "--reviewer", "ana")
    assert run.code == 0, run.err
    record = store.get(gate_id)
    assert (record.status, record.outcome, record.votes[0].reviewer) == (
        GateStatus.RESOLVED,
        "reject",
        "ana",
    )


def test_decision_on_a_closed_gate_exits_1_and_changes_nothing(db: str, store: GateStore) -> None:
    gate_id = _open(store)
    store.decide(gate_id, reviewer="ana", option="reject", channel="page")
    run = _cli(db, "approve", gate_id, "--reviewer", "bob")
    assert run.code == 1
    record = store.get(gate_id)
    assert record.outcome == "reject" and len(record.votes) == 1


def test_non_assignee_is_refused_with_exit_1(db: str, store: GateStore) -> None:
    gate_id = _open(store)
    run = _cli(db, "approve", gate_id, "--reviewer", "mallory")
    assert run.code == 1
    assert store.get(gate_id).votes == []


def test_approve_a_named_branch(db: str, store: GateStore) -> None:
    policy = {"options": ["retrain", "ship", "stop"], "reject_options": ["stop"]}
    gate_id = _open(store, policy)
    assert _cli(db, "approve", gate_id, "--option", "stop", "--reviewer", "ana").code == 1
    run = _cli(db, "approve", gate_id, "--option", "ship", "--reviewer", "ana")
    assert run.code == 0, run.err
    assert store.get(gate_id).outcome == "ship"


def test_link_prints_a_personal_signed_link(db: str, store: GateStore) -> None:
    gate_id = _open(store)
    run = _cli(
        db,
        "link",
        gate_id,
        "--reviewer",
        "ana",
        "--base-url",
        "https://gates.example",
        GUARDFLOW_GATES_SIGNING_KEY=KEY,
    )
    assert run.code == 0, run.err
    url = run.out.strip()
    assert url.startswith("https://gates.example/l/")
    claims = LinkSigner(KEY).verify(url.rsplit("/", 1)[1])
    assert (claims.gate_id, claims.reviewer) == (gate_id, "ana")
    assert store.get(gate_id).votes == []


def test_link_without_signing_key_exits_2(db: str, store: GateStore) -> None:
    gate_id = _open(store)
    run = _cli(db, "link", gate_id, "--reviewer", "ana")
    assert run.code == 2
    assert "GUARDFLOW_GATES_SIGNING_KEY" in run.err


def test_export_writes_jsonl(db: str, store: GateStore, tmp_path: Path) -> None:
    gate_id = _open(store, items=True)
    store.correct_item(gate_id, "i0", label="cold", reviewer="ana", channel="page")
    store.decide(gate_id, reviewer="ana", option="approve", channel="page")
    out = tmp_path / "decisions.jsonl"
    run = _cli(db, "export", str(out))
    assert run.code == 0, run.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    corrected = [r for r in rows if r["corrected"]]
    assert [(r["item_id"], r["label"]) for r in corrected] == [("i0", "cold")]


def test_bad_store_url_exits_2(tmp_path: Path) -> None:
    run = _cli("nosuchdriver://x", "list")
    assert run.code == 2


def test_serve_without_signing_key_exits_2(db: str) -> None:
    run = _cli(db, "serve", "--port", "0")
    assert run.code == 2
    assert "GUARDFLOW_GATES_SIGNING_KEY" in run.err


def test_serve_runs_the_page_and_redacts_links_in_its_access_log(db: str, store: GateStore) -> None:
    gate_id = _open(store)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardflow", "gates", "serve", "--port", str(port)],
        env=_env(db, GUARDFLOW_GATES_SIGNING_KEY=KEY),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        token = LinkSigner(KEY).issue(gate_id, "ana", ttl_s=600)
        page = httpx.get(f"{base}/l/{token}")
        assert page.status_code == 200 and "Deliver scored leads" in page.text
        assert store.get(gate_id).votes == []
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "/l/<redacted>" in out + err
    assert token not in out + err
