"""ApprovalGateOperator and GateBranchOperator run by Airflow itself (``dag.test()``).

Whole loops with real components: the DAG runs in a thread (``dag.test()`` runs the deferred
task's GateTrigger inline, in process), the gate lives in a SQLite store in ``tmp_path``, the
request reaches a real webhook receiver and a real SMTP server, and reviewers decide through the
real review page (``gate_server``): by signed-link POST (GET the confirmation page first, then
post its form as a browser would), by the CLI in a subprocess, or by clicking in headless
Chromium. The DAGs are in ``tests/airflow/dags/gate_dags.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import yaml

TEST_DAGS = Path(__file__).resolve().parent / "dags" / "gate_dags.py"
GATE = "gate"
SIGNING_KEY = "guardflow-airflow-gate-tests-signing-key-0123456789"
PLANTED_EMAIL = "jane.planted.doe@example.com"
REVIEWERS = {"ana": "ana@reviewers.test", "bo": "bo@reviewers.test", "cy": "cy@reviewers.test"}
LINK = re.compile(r"http://127\.0\.0\.1:\d+/l/[A-Za-z0-9._~%-]+")

pytestmark = pytest.mark.timeout(300)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def gate_signer(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The review page's signer uses the key the operator signs links with (from the env)."""
    from guardflow.gates.tokens import LinkSigner

    monkeypatch.setenv("GUARDFLOW_GATES_SIGNING_KEY", SIGNING_KEY)
    return LinkSigner(SIGNING_KEY)


@dataclass
class Gates:
    """Everything a gate test needs: store, review page, notification sinks, DAG runner."""

    tmp_path: Path
    server: Any
    receiver: Any
    smtp: Any
    load_dag: Callable[[Path, str], Any]
    run_summary: Callable[[Any], Any]

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.tmp_path / 'gates.db'}"

    def policy(self, **overrides: Any) -> Path:
        """Write a policy YAML (webhook + email notifiers, review page links) and return it."""
        data: dict[str, Any] = {
            "assignees": ["ana", "bo"],
            "emails": REVIEWERS,
            "notifiers": [
                {"kind": "webhook", "url": self.receiver.url("/hook")},
                {
                    "kind": "email",
                    "host": self.smtp.host,
                    "port": self.smtp.port,
                    "sender": "gates@guardflow.test",
                },
            ],
            "base_url": self.server.url,
            "store_url": self.store_url,
            "expires_after_s": 600,
            "poll_interval_s": 0.1,
            **overrides,
        }
        path = self.tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    def run(
        self,
        dag_id: str,
        *,
        policy: Path,
        review: Callable[[], Any] | None = None,
        conf: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run ``dag.test()`` while ``review`` acts as the reviewers in a thread.

        ``dag.test()`` runs in the main thread (Airflow's task runner installs signal
        handlers). If ``review`` fails, the gate is rejected through the store so the run ends,
        and the reviewer's error is raised.

        Returns:
            The run's :class:`RunResult` and what ``review`` returned.
        """
        dag = self.load_dag(TEST_DAGS, dag_id)
        run_conf = {"policy_path": str(policy), **(conf or {})}
        box: dict[str, Any] = {}

        def reviewer() -> None:
            try:
                box["value"] = review() if review else None
            except BaseException as exc:
                box["error"] = exc
                self._unblock(dag_id)

        thread = threading.Thread(target=reviewer, daemon=True, name="reviewer")
        thread.start()
        try:
            result = self.run_summary(dag.test(run_conf=run_conf, **kwargs))
        finally:
            thread.join(60)
        if "error" in box:
            raise box["error"]
        return result, box.get("value")

    def _unblock(self, pipeline: str) -> None:
        from guardflow.errors import GateError

        try:
            gate = self.wait_for_gate(pipeline)
        except AssertionError:
            return
        for name in REVIEWERS:
            try:
                self.server.store.decide(gate.id, reviewer=name, option="reject", channel="api")
            except GateError:
                continue

    def wait_for_gate(self, pipeline: str, timeout: float = 60.0) -> Any:
        """Wait until the DAG's gate is in the store and return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gates = self.server.store.list(pipeline=pipeline, status=None)
            if gates:
                return gates[0]
            time.sleep(0.05)
        raise AssertionError(f"no gate for {pipeline} within {timeout} s")

    def webhook_link(self, reviewer: str, *, n: int = 1) -> str:
        """The personal link of ``reviewer`` in the ``n``-th webhook notification."""
        requests = self.receiver.wait_for(n, timeout=60)
        link: str = requests[n - 1].json["links"][reviewer]
        return link

    def email_link(self, reviewer: str) -> str:
        """The link in the mail sent to ``reviewer``."""
        address = REVIEWERS[reviewer]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for mail in list(self.smtp.messages):
                if address in str(mail["To"]):
                    match = LINK.search(_mail_text(mail))
                    assert match, "the mail holds no decision link"
                    return match.group(0)
            self.smtp.wait_for(len(self.smtp.messages) + 1, timeout=60)
        raise AssertionError(f"no mail for {reviewer}")


@pytest.fixture
def gates(
    tmp_path: Path,
    gate_server: Any,
    notification_receiver: Any,
    smtp_sink: Any,
    load_dag: Callable[[Path, str], Any],
    run_summary: Callable[[Any], Any],
) -> Iterator[Gates]:
    yield Gates(tmp_path, gate_server, notification_receiver, smtp_sink, load_dag, run_summary)


# -- reviewers' channels ----------------------------------------------------------------------


class _Form(HTMLParser):
    """The decision form of a review page: action, hidden fields, option buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.options: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") in ("hidden", "text") and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name") == "option":
            self.options.append(a.get("value", ""))


def decide_by_link(link: str, option: str, *, comment: str = "") -> httpx.Response:
    """Open the link (GET: confirmation page), then post its form with ``option``."""
    with httpx.Client(timeout=30) as client:
        page = client.get(link)
        assert page.status_code == 200, page.status_code
        form = _Form()
        form.feed(page.text)
        assert form.action is not None and option in form.options, form.options
        data = {**form.fields, "option": option, "comment": comment}
        return client.post(urljoin(link, form.action or link), data=data)


def decide_by_cli(store_url: str, gate_id: str, verb: str, reviewer: str) -> None:
    """Vote with ``python -m guardflow gates approve|reject`` in a subprocess."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardflow",
            "gates",
            verb,
            gate_id,
            "--reviewer",
            reviewer,
            "--store",
            store_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _mail_text(mail: Any) -> str:
    parts = [p for p in mail.walk() if p.get_content_type() == "text/plain"]
    return "\n".join(str(p.get_content()) for p in parts) or str(mail)


def _task_state(dag_id: str, task_id: str) -> str | None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        states = session.scalars(
            select(TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id
            )
        ).all()
    return str(states[-1]) if states and states[-1] is not None else None


# -- the decision comes by signed link, CLI, page ---------------------------------------------


def test_signed_link_approval_runs_the_approved_branch(gates: Gates) -> None:
    def review() -> tuple[Any, int]:
        gate = gates.wait_for_gate("guardflow_test_gate_branch")
        response = decide_by_link(gates.webhook_link("ana"), "approve", comment="looks right")
        return gate, response.status_code

    result, (gate, status) = gates.run(
        "guardflow_test_gate_branch", policy=gates.policy(), review=review
    )

    assert status == 200
    assert result.state == "success"
    assert result.tasks == {
        GATE: ("success", 1),
        "deliver": ("success", 1),
        "quarantine": ("skipped", 0),
    }
    outcome = result.xcom[(GATE, "gate_outcome")]
    assert outcome["gate_id"] == gate.id
    assert (outcome["outcome"], outcome["channel"], outcome["decided_by"]) == (
        "approve",
        "link",
        ["ana"],
    )


def test_opening_the_link_does_not_decide(gates: Gates) -> None:
    def review() -> tuple[int, Any]:
        gate = gates.wait_for_gate("guardflow_test_gate_skip")
        link = gates.webhook_link("bo")
        page = httpx.get(link, timeout=30)
        still = gates.server.store.get(gate.id)
        decide_by_link(link, "approve")
        return page.status_code, still

    result, (status, still) = gates.run(
        "guardflow_test_gate_skip", policy=gates.policy(), review=review
    )

    assert status == 200
    assert (still.status.value, still.votes) == ("pending", [])
    assert result.tasks[GATE] == ("success", 1)


def test_request_reaches_the_webhook_and_each_reviewer_by_email_once(gates: Gates) -> None:
    def review() -> tuple[Any, Any, list[Any]]:
        gate = gates.wait_for_gate("guardflow_test_gate_skip")
        hook = gates.receiver.wait_for(1, timeout=60)[0].json
        mails = gates.smtp.wait_for(2, timeout=60)
        decide_by_link(gates.email_link("bo"), "approve")
        return gate, hook, mails

    result, (gate, hook, mails) = gates.run(
        "guardflow_test_gate_skip", policy=gates.policy(), review=review
    )

    assert hook["event"] == "gate.opened" and hook["gate"]["id"] == gate.id
    assert sorted(hook["links"]) == ["ana", "bo"]
    assert sorted(str(m["To"]) for m in mails) == [REVIEWERS["ana"], REVIEWERS["bo"]]
    assert len(gates.receiver.requests) == 1 and len(gates.smtp.messages) == 2
    assert result.xcom[(GATE, "return_value")]["decided_by"] == ["bo"]


def test_cli_rejection_takes_the_reject_branch(gates: Gates) -> None:
    def review() -> None:
        gate = gates.wait_for_gate("guardflow_test_gate_branch")
        decide_by_cli(gates.store_url, gate.id, "reject", "bo")

    result, _ = gates.run("guardflow_test_gate_branch", policy=gates.policy(), review=review)

    assert result.state == "success"
    assert result.tasks[GATE] == ("success", 1)
    assert result.tasks["quarantine"] == ("success", 1)
    assert result.tasks["deliver"][0] == "skipped"
    outcome = result.xcom[(GATE, "gate_outcome")]
    assert (outcome["outcome"], outcome["channel"], outcome["approved"]) == (
        "reject",
        "cli",
        False,
    )


def test_review_page_in_chromium_approves(gates: Gates) -> None:
    # Not the chromium_page fixture: Playwright's sync page belongs to the thread that made it,
    # and dag.test() must hold the main thread, so the reviewer thread launches Chromium itself
    # (same executable and flags as the fixture).
    from guardflow.testing.gate_fixtures import CHROMIUM_ARGS

    executable = os.environ.get("GUARDFLOW_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.skip(f"Chromium not found at {executable} (set GUARDFLOW_CHROMIUM)")

    def review() -> None:
        from playwright.sync_api import sync_playwright

        gate = gates.wait_for_gate("guardflow_test_gate_skip")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page()
                page.set_default_timeout(15_000)
                page.set_extra_http_headers(gates.server.headers("ana"))
                page.goto(f"{gates.server.url}/gates/{gate.id}")
                page.get_by_role("button", name="Approve").click()
                page.wait_for_load_state()
            finally:
                browser.close()

    result, _ = gates.run("guardflow_test_gate_skip", policy=gates.policy(), review=review)

    assert result.tasks == {GATE: ("success", 1), "deliver": ("success", 1)}
    outcome = result.xcom[(GATE, "return_value")]
    assert (outcome["outcome"], outcome["channel"], outcome["decided_by"]) == (
        "approve",
        "page",
        ["ana"],
    )


# -- rejection --------------------------------------------------------------------------------


def test_rejection_with_skip_skips_the_gate_and_downstream(gates: Gates) -> None:
    def review() -> None:
        gates.wait_for_gate("guardflow_test_gate_skip")
        decide_by_link(gates.webhook_link("ana"), "reject")

    result, _ = gates.run("guardflow_test_gate_skip", policy=gates.policy(), review=review)

    assert result.state == "success"
    assert result.tasks[GATE][0] == "skipped"
    assert result.tasks["deliver"][0] == "skipped"
    assert result.xcom[(GATE, "gate_outcome")]["outcome"] == "reject"
    assert (GATE, "return_value") not in result.xcom


def test_rejection_with_fail_fails_the_gate_without_retry(
    gates: Gates, capfd: pytest.CaptureFixture[str]
) -> None:
    def review() -> Any:
        gate = gates.wait_for_gate("guardflow_test_gate_fail")
        decide_by_cli(gates.store_url, gate.id, "reject", "ana")
        return gate

    result, gate = gates.run("guardflow_test_gate_fail", policy=gates.policy(), review=review)

    log = "".join(capfd.readouterr())
    assert result.state == "failed"
    assert result.tasks[GATE] == ("failed", 1)
    assert result.tasks["deliver"][0] == "upstream_failed"
    assert "GateRejectedError" in log and f"gate {gate.id} was rejected" in log
    assert result.xcom[(GATE, "gate_outcome")]["decided_by"] == ["ana"]


# -- expiry -----------------------------------------------------------------------------------


def test_timeout_approve_lets_the_run_go_on(gates: Gates) -> None:
    policy = gates.policy(expires_after_s=1, on_timeout="approve")

    result, _ = gates.run("guardflow_test_gate_fail", policy=policy)

    assert result.tasks == {GATE: ("success", 1), "deliver": ("success", 1)}
    outcome = result.xcom[(GATE, "return_value")]
    assert (outcome["outcome"], outcome["channel"], outcome["timed_out"]) == (
        "approve",
        "timeout",
        True,
    )


def test_timeout_reject_follows_the_reject_branch(gates: Gates) -> None:
    policy = gates.policy(expires_after_s=1, on_timeout="reject")

    result, _ = gates.run("guardflow_test_gate_branch", policy=policy)

    assert result.tasks[GATE] == ("success", 1)
    assert result.tasks["quarantine"] == ("success", 1)
    assert result.tasks["deliver"][0] == "skipped"
    assert result.xcom[(GATE, "gate_outcome")]["timed_out"] is True


def test_timeout_fail_fails_the_task_with_the_timeout_error(
    gates: Gates, capfd: pytest.CaptureFixture[str]
) -> None:
    policy = gates.policy(expires_after_s=1, on_timeout="fail")

    result, _ = gates.run("guardflow_test_gate_skip", policy=policy)

    log = "".join(capfd.readouterr())
    assert result.tasks[GATE] == ("failed", 1)
    assert result.tasks["deliver"][0] == "upstream_failed"
    assert "GateTimeoutError" in log and "expired without a decision" in log
    outcome = result.xcom[(GATE, "gate_outcome")]
    assert (outcome["status"], outcome["outcome"]) == ("expired", None)


# -- quorum and escalation --------------------------------------------------------------------


def test_two_of_two_quorum_waits_for_the_second_reviewer(gates: Gates) -> None:
    dag_id = "guardflow_test_gate_skip"

    def review() -> tuple[Any, str | None, str | None]:
        gate = gates.wait_for_gate(dag_id)
        decide_by_cli(gates.store_url, gate.id, "approve", "ana")
        after_one = gates.server.store.get(gate.id)
        # The trigger keeps polling: the task has not finished and delivery has not started.
        states = _task_state(dag_id, GATE), _task_state(dag_id, "deliver")
        decide_by_link(gates.webhook_link("bo"), "approve")
        return after_one, *states

    result, (after_one, gate_state, deliver_state) = gates.run(
        dag_id, policy=gates.policy(required_approvals=2), review=review
    )

    assert (after_one.status.value, after_one.tally()) == ("pending", {"approve": 1})
    assert gate_state not in ("success", "failed", "skipped")
    assert deliver_state is None
    assert result.tasks == {GATE: ("success", 1), "deliver": ("success", 1)}
    assert result.xcom[(GATE, "return_value")]["decided_by"] == ["ana", "bo"]


def test_escalation_wakes_the_task_notifies_the_next_group_and_defers_again(
    gates: Gates,
) -> None:
    def review() -> Any:
        gates.wait_for_gate("guardflow_test_gate_skip")
        escalated = gates.receiver.wait_for(2, timeout=60)[1].json
        decide_by_link(gates.webhook_link("cy", n=2), "approve")
        return escalated

    policy = gates.policy(assignees=["ana"], escalation=[{"after_s": 1, "assignees": ["cy"]}])
    result, escalated = gates.run("guardflow_test_gate_skip", policy=policy, review=review)

    assert escalated["event"] == "gate.escalated"
    assert list(escalated["links"]) == ["cy"]
    assert result.tasks == {GATE: ("success", 1), "deliver": ("success", 1)}
    assert result.xcom[(GATE, "return_value")]["decided_by"] == ["cy"]


# -- a worker killed while waiting ------------------------------------------------------------


def _gate_opens(audit: Path, gate_id: str) -> int:
    from guardflow.audit import JsonlAuditSink

    return sum(
        1
        for e in JsonlAuditSink(audit).read()
        if e.step_kind == "gate"
        and e.attributes.get("gate.id") == gate_id
        and e.attributes.get("gate.action") == "open"
    )


def test_a_restarted_task_resumes_the_same_gate_without_notifying_again(
    gates: Gates, airflow_home: Path
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.utils.types import DagRunType

    from guardflow_airflow.operators.gates import ApprovalGateOperator

    dag_id = "guardflow_test_gate_skip"
    policy = gates.policy()
    when = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
    run_id = DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=when, run_after=when)
    # The first worker ran the task of that DAG run: it opened the gate and deferred, then its
    # worker died before Airflow recorded the deferral (twice, to be sure).
    op = ApprovalGateOperator(task_id=GATE, subject="Deliver batch b1?", policy=str(policy))
    ids = []
    for attempt in (1, 2):
        ti = _FakeTI(dag_id=dag_id, task_id=GATE, run_id=run_id, try_number=attempt)
        with pytest.raises(TaskDeferred) as deferred:
            op.execute({"ti": ti, "run_id": run_id})  # type: ignore[arg-type]
        ids.append(deferred.value.trigger.gate_id)
    gates.receiver.wait_for(1, timeout=60)
    gates.smtp.wait_for(2, timeout=60)
    audit = airflow_home / "audit.jsonl"

    def review() -> None:
        # Decide once Airflow's own run of the task has opened (found) the gate again.
        deadline = time.monotonic() + 60
        while _gate_opens(audit, ids[0]) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        decide_by_link(gates.webhook_link("ana"), "approve")

    result, _ = gates.run(dag_id, policy=policy, review=review, logical_date=when, run_after=when)

    assert ids[0] == ids[1]
    assert result.xcom[(GATE, "return_value")]["gate_id"] == ids[0]
    assert result.tasks == {GATE: ("success", 1), "deliver": ("success", 1)}
    assert len(gates.receiver.requests) == 1
    assert len(gates.smtp.messages) == 2
    assert len(gates.server.store.list(status=None)) == 1


@dataclass
class _FakeTI:
    """What ``run_identity`` reads from a task instance (the first, killed worker's)."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    map_index: int = -1


# -- what Airflow keeps: XCom, rendered fields, logs ------------------------------------------


def test_xcom_rendered_fields_and_logs_hold_no_pii_from_the_context(
    gates: Gates, airflow_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from guardflow.gates.models import GateOutcome

    dag_id = "guardflow_test_gate_fail"
    policy = gates.policy(expires_after_s=1, on_timeout="approve")

    result, _ = gates.run(dag_id, policy=policy, conf={"customer": PLANTED_EMAIL})

    with create_session() as session:
        rendered = session.scalars(
            select(RenderedTaskInstanceFields.rendered_fields).where(
                RenderedTaskInstanceFields.dag_id == dag_id,
                RenderedTaskInstanceFields.task_id == GATE,
            )
        ).all()
    # dag.test() writes task logs to stdout (captured below); files under AIRFLOW_HOME are the
    # audit trail and config. The metadata DB keeps the run's conf: the DAG author's input.
    files = [
        p.read_text(encoding="utf-8", errors="replace")
        for p in airflow_home.rglob("*")
        if p.is_file() and ".db" not in p.name
    ]
    log = "".join(capfd.readouterr())
    assert result.tasks[GATE] == ("success", 1)
    assert {k for k in result.xcom if k[0] == GATE} == {
        (GATE, "return_value"),
        (GATE, "gate_outcome"),
    }
    assert set(result.xcom[(GATE, "return_value")]) == set(GateOutcome.model_fields)
    assert rendered and "<EMAIL_ADDRESS>" in repr(rendered)
    assert "Waiting for reviewers of gate" in log
    sent = [repr(gates.receiver.requests), *(str(m) for m in gates.smtp.messages)]
    haystacks = [repr(result.xcom), repr(rendered), log, *files, *sent]
    assert not [h for h in haystacks if PLANTED_EMAIL in h]


# -- configuration ----------------------------------------------------------------------------


def test_a_store_url_with_a_password_is_refused_before_anything_is_opened(
    tmp_path: Path,
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from guardflow_airflow.operators.gates import ApprovalGateOperator

    planted = "pw-planted-4b1d"
    op = ApprovalGateOperator(
        task_id=GATE,
        subject="Deliver?",
        store_url=f"postgresql+psycopg://gates:{planted}@127.0.0.1:1/gates",
    )
    ti = _FakeTI(dag_id="d", task_id=GATE, run_id="r", try_number=1)

    with pytest.raises(AirflowFailException, match="PGPASSWORD") as failed:
        op.execute({"ti": ti, "run_id": "r"})  # type: ignore[arg-type]

    assert planted not in str(failed.value)


def test_unknown_on_reject_is_refused_when_the_dag_is_parsed() -> None:
    from guardflow_airflow.operators.gates import ApprovalGateOperator

    with pytest.raises(ValueError, match="on_reject must be 'skip' or 'fail'"):
        ApprovalGateOperator(task_id=GATE, subject="x", on_reject="ignore")  # type: ignore[arg-type]


def test_branch_mapping_naming_an_unknown_option_is_refused_when_parsed() -> None:
    from guardflow_airflow.operators.gates import GateBranchOperator

    with pytest.raises(ValueError, match="options the policy does not offer: hold"):
        GateBranchOperator(
            task_id=GATE,
            subject="x",
            policy={"options": ["ship", "stop"], "reject_options": ["stop"]},
            options_mapping={"ship": "deliver", "hold": "wait"},
        )
