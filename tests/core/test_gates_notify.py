"""Gate notifiers against a real local webhook receiver and SMTP sink: payloads, links, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from guardflow.errors import NotificationError
from guardflow.gates.models import (
    EmailNotifierConfig,
    GatePolicy,
    GateRecord,
    SlackNotifierConfig,
    WebhookNotifierConfig,
)
from guardflow.gates.notify import (
    EmailNotifier,
    GateMessage,
    Notifier,
    SlackNotifier,
    TeamsNotifier,
    WebhookNotifier,
    build_notifiers,
    verify_webhook_signature,
)
from guardflow.secrets import SecretCache, VaultClient, VaultConfig
from guardflow.testing._ports import free_port
from guardflow.testing.notify_sinks import NotificationReceiver, SMTPSink
from guardflow.testing.vault_server import assert_secret_absent

CREATED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _gate(**changes: object) -> GateRecord:
    values: dict[str, object] = {
        "id": "g" * 32,
        "subject": "Ship model v7?",
        "body": "Accuracy **0.91** on the holdout.\n\n- drift: none",
        "context": {"accuracy": 0.91, "rows": 1200},
        "policy": GatePolicy(required_approvals=2, assignees=["ana", "bo", "cy"]),
        "pipeline": "train_dag",
        "run_id": "manual__1",
        "task_id": "gate",
        "created_at": CREATED,
        "expires_at": CREATED + timedelta(hours=4),
    }
    values.update(changes)
    return GateRecord.model_validate(values)


def _message(event: str = "opened", **changes: object) -> GateMessage:
    links = {r: f"http://review.test/l/v1.token-of-{r}.sig" for r in ("ana", "bo", "cy")}
    return GateMessage(
        gate=_gate(**changes), event=event, page_url="http://review.test/gates/g", links=links
    )


class Sleeps(list[float]):
    """Records retry delays instead of waiting them out."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def secret_path() -> str:
    # Incoming-webhook URLs carry their credential in the path, like Slack's /services/T/B/<secret>.
    return f"/services/T000/B000/planted{secrets.token_hex(8)}"


def _buttons(payload: dict[str, object]) -> list[dict[str, object]]:
    blocks = payload["blocks"]
    assert isinstance(blocks, list)
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_notifiers_satisfy_the_protocol(notification_receiver: NotificationReceiver) -> None:
    url = notification_receiver.url()
    config = EmailNotifierConfig()
    for notifier in (
        SlackNotifier(url),
        TeamsNotifier(url),
        WebhookNotifier(url),
        EmailNotifier(config, password=None, emails={}),
    ):
        assert isinstance(notifier, Notifier)


def test_slack_message_has_blocks_decision_buttons_and_no_personal_links_by_default(
    notification_receiver: NotificationReceiver, secret_path: str
) -> None:
    SlackNotifier(notification_receiver.url(secret_path)).send(_message())
    (_, _, payload), *_ = notification_receiver.wait_for(1)
    urls = {b["text"]["text"]: b["url"] for b in _buttons(payload)}
    # A shared channel must not show links that let anyone vote as another reviewer.
    assert urls == {
        "Open review page": "http://review.test/gates/g",
        "Approve": "http://review.test/gates/g?option=approve",
        "Reject": "http://review.test/gates/g?option=reject",
    }
    assert "/l/" not in json.dumps(payload)


def test_slack_message_has_blocks_and_personal_links_when_enabled(
    notification_receiver: NotificationReceiver, secret_path: str
) -> None:
    notifier = SlackNotifier(notification_receiver.url(secret_path), personal_links=True)
    notifier.send(_message())
    (path, headers, payload), *_ = notification_receiver.wait_for(1)
    assert path == secret_path
    assert headers["content-type"] == "application/json"
    types = [b["type"] for b in payload["blocks"]]
    assert types[0] == "header" and "actions" in types and "context" in types
    assert payload["blocks"][0]["text"]["text"] == "Approval needed: Ship model v7?"
    section = next(b for b in payload["blocks"] if b["type"] == "section" and "text" in b)
    assert "*0.91*" in section["text"]["text"]  # Markdown bold became mrkdwn bold
    urls = {b["text"]["text"]: b["url"] for b in _buttons(payload)}
    assert urls == {
        "Open review page": "http://review.test/gates/g",
        "Approve": "http://review.test/gates/g?option=approve",
        "Reject": "http://review.test/gates/g?option=reject",
        "Review as ana": "http://review.test/l/v1.token-of-ana.sig",
        "Review as bo": "http://review.test/l/v1.token-of-bo.sig",
        "Review as cy": "http://review.test/l/v1.token-of-cy.sig",
    }


def test_slack_escapes_control_characters_and_keeps_block_limits(
    notification_receiver: NotificationReceiver,
) -> None:
    message = _message(subject="<!channel> " + "S" * 400, body="a < b & <!here> " + "x" * 9000)
    SlackNotifier(notification_receiver.url()).send(message)
    (_, _, payload), *_ = notification_receiver.wait_for(1)
    header = payload["blocks"][0]["text"]["text"]
    section = payload["blocks"][1]["text"]["text"]
    assert len(header) <= 150
    assert len(section) <= 3000
    assert section.startswith("a &lt; b &amp; &lt;!here&gt; ")
    assert "<!here>" not in json.dumps(payload) and "<!channel>" not in payload["text"]


def test_slack_keeps_within_the_25_element_actions_limit(
    notification_receiver: NotificationReceiver,
) -> None:
    links = {f"user{i:02d}": f"http://review.test/l/t{i}" for i in range(25)}
    message = GateMessage(gate=_gate(), event="opened", page_url="http://p", links=links)
    SlackNotifier(notification_receiver.url(), personal_links=True).send(message)
    (_, _, payload), *_ = notification_receiver.wait_for(1)
    assert len(_buttons(payload)) == 1 + 2 + 19
    assert "6 more reviewers" in json.dumps(payload)


def test_teams_card_opens_page_and_personal_links(
    notification_receiver: NotificationReceiver,
) -> None:
    TeamsNotifier(notification_receiver.url("/teams"), personal_links=True).send(_message())
    (_, _, payload), *_ = notification_receiver.wait_for(1)
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    actions = [a for b in card["body"] if b["type"] == "ActionSet" for a in b["actions"]]
    assert {a["type"] for a in actions} == {"Action.OpenUrl"}
    assert {a["title"]: a["url"] for a in actions}["Review as bo"].endswith("token-of-bo.sig")
    assert actions[0]["url"] == "http://review.test/gates/g"


def test_webhook_body_is_signed_so_a_receiver_can_verify_it(
    notification_receiver: NotificationReceiver,
) -> None:
    secret = secrets.token_hex(16)
    WebhookNotifier(notification_receiver.url(), secret=secret).send(_message())
    (_, headers, payload), *_ = notification_receiver.wait_for(1)
    body = notification_receiver.bodies[0]
    timestamp = headers["x-guardflow-timestamp"]
    # What any receiver would do, with nothing from guardflow:
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert headers["x-guardflow-signature"] == f"sha256={expected.hexdigest()}"
    assert verify_webhook_signature(
        secret, timestamp=timestamp, body=body, signature=headers["x-guardflow-signature"]
    )
    assert not verify_webhook_signature(
        "another-secret", timestamp=timestamp, body=body, signature=headers["x-guardflow-signature"]
    )
    assert payload["event"] == "gate.opened"
    assert payload["gate"]["id"] == "g" * 32
    assert payload["gate"]["page_url"] == "http://review.test/gates/g"
    assert payload["links"]["ana"].endswith("token-of-ana.sig")


def test_tampered_or_stale_webhook_fails_verification(
    notification_receiver: NotificationReceiver,
) -> None:
    WebhookNotifier(notification_receiver.url(), secret="s3cret").send(_message())
    (_, headers, _), *_ = notification_receiver.wait_for(1)
    body, ts, sig = (
        notification_receiver.bodies[0],
        headers["x-guardflow-timestamp"],
        headers["x-guardflow-signature"],
    )
    assert not verify_webhook_signature("s3cret", timestamp=ts, body=body + b" ", signature=sig)
    late = float(ts) + 301
    assert not verify_webhook_signature("s3cret", timestamp=ts, body=body, signature=sig, now=late)


def test_escalation_is_announced_as_such(notification_receiver: NotificationReceiver) -> None:
    WebhookNotifier(notification_receiver.url()).send(_message(event="escalation"))
    (_, headers, payload), *_ = notification_receiver.wait_for(1)
    assert payload["event"] == "gate.escalated"
    assert "x-guardflow-signature" not in headers  # no secret, no signature


def test_429_is_retried_after_retry_after(
    notification_receiver: NotificationReceiver, sleeps: Sleeps
) -> None:
    # Scripted: a real Slack cannot be made to throttle on demand.
    notification_receiver.fail_next(2, 429, retry_after=7)
    SlackNotifier(notification_receiver.url(), sleep=sleeps).send(_message())
    assert notification_receiver.statuses == [429, 429, 200]
    assert sleeps == [7.0, 7.0]
    assert len(notification_receiver.delivered) == 1


def test_retry_after_is_capped(notification_receiver: NotificationReceiver, sleeps: Sleeps) -> None:
    # Scripted fault, as above.
    notification_receiver.fail_next(1, 429, retry_after=3600)
    SlackNotifier(notification_receiver.url(), sleep=sleeps).send(_message())
    assert sleeps == [30.0]


def test_503_is_retried_with_backoff_then_succeeds(
    notification_receiver: NotificationReceiver, sleeps: Sleeps
) -> None:
    # Scripted: a real Slack cannot be made to return 503 on demand.
    notification_receiver.fail_next(2, 503)
    TeamsNotifier(notification_receiver.url(), sleep=sleeps).send(_message())
    assert notification_receiver.statuses == [503, 503, 200]
    assert sleeps == [0.5, 1.0]


def test_5xx_after_all_retries_is_a_retryable_notification_error(
    notification_receiver: NotificationReceiver, sleeps: Sleeps, secret_path: str
) -> None:
    notification_receiver.fail_next(4, 503)
    notifier = SlackNotifier(notification_receiver.url(secret_path), retries=3, sleep=sleeps)
    with pytest.raises(NotificationError, match="HTTP 503 after 4 attempts") as info:
        notifier.send(_message())
    assert info.value.retryable
    assert len(notification_receiver.requests) == 4
    assert_secret_absent(secret_path, info.value, repr(notifier))


def test_400_fails_at_once_naming_kind_and_status_not_url(
    notification_receiver: NotificationReceiver,
    sleeps: Sleeps,
    secret_path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    notification_receiver.fail_next(1, 400)
    url = notification_receiver.url(secret_path)
    with pytest.raises(NotificationError) as info:
        SlackNotifier(url, sleep=sleeps).send(_message())
    assert "slack" in str(info.value) and "400" in str(info.value)
    assert len(notification_receiver.requests) == 1 and sleeps == []
    assert info.value.gate_id == "g" * 32
    assert_secret_absent(secret_path, info.value, caplog.text)


def test_connection_refused_fails_after_retries_without_the_url(
    sleeps: Sleeps, secret_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    url = f"http://127.0.0.1:{free_port()}{secret_path}"
    with pytest.raises(NotificationError, match="could not connect") as info:
        WebhookNotifier(url, secret="x", retries=2, sleep=sleeps).send(_message())
    assert "webhook" in str(info.value)
    assert len(sleeps) == 2
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert_secret_absent(secret_path, info.value, caplog.text)


def test_successful_send_logs_no_url(
    notification_receiver: NotificationReceiver, secret_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    SlackNotifier(notification_receiver.url(secret_path)).send(_message())
    notification_receiver.wait_for(1)
    assert "slack notification delivered" in caplog.text
    assert_secret_absent(secret_path, caplog.text)


EMAILS = {"ana": "ana@example.test", "bo": "bo@example.test", "dan": "dan@example.test"}


def _email(sink: SMTPSink, **changes: object) -> EmailNotifierConfig:
    values: dict[str, object] = {"host": sink.host, "port": sink.port, "sender": "gates@x.test"}
    values.update(changes)
    return EmailNotifierConfig.model_validate(values)


def test_email_goes_to_each_reviewer_with_only_their_link(smtp_sink: SMTPSink) -> None:
    EmailNotifier(_email(smtp_sink), password=None, emails=EMAILS).send(_message())
    mails = smtp_sink.wait_for(2)
    by_to = {str(m["To"]): m for m in mails}
    assert set(by_to) == {"ana@example.test", "bo@example.test"}  # cy: no address; dan: no link
    for reviewer, mail in (("ana", by_to["ana@example.test"]), ("bo", by_to["bo@example.test"])):
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html_part = mail.get_body(preferencelist=("html",)).get_content()
        others = {"ana", "bo", "cy"} - {reviewer}
        for part in (text, html_part):
            assert f"token-of-{reviewer}.sig" in part
            assert not any(f"token-of-{o}" in part for o in others)
        assert mail["From"] == "gates@x.test"
        assert "Ship model v7?" in str(mail["Subject"])


def test_email_html_is_escaped(smtp_sink: SMTPSink) -> None:
    message = _message(subject="<script>x</script>", body="<img src=x onerror=alert(1)>")
    EmailNotifier(_email(smtp_sink), password=None, emails={"ana": "a@x.test"}).send(message)
    (mail,) = smtp_sink.wait_for(1)
    html_part = mail.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in html_part and "<img" not in html_part
    assert "&lt;script&gt;" in html_part


def test_email_login_never_shows_the_password(
    smtp_sink: SMTPSink, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    password = f"planted-{secrets.token_hex(8)}"
    notifier = EmailNotifier(
        _email(smtp_sink, username="mailer"), password=password, emails={"ana": "a@x.test"}
    )
    notifier.send(_message())
    smtp_sink.wait_for(1)
    assert smtp_sink.logins == ["mailer"]
    assert_secret_absent(password, caplog.text, capsys.readouterr(), repr(notifier))


def test_transient_smtp_reply_is_retried(smtp_sink: SMTPSink, sleeps: Sleeps) -> None:
    # Scripted: no real mail server answers 451 on demand.
    smtp_sink.fail_next(1, 451)
    EmailNotifier(_email(smtp_sink), password=None, emails={"ana": "a@x.test"}, sleep=sleeps).send(
        _message()
    )
    assert len(smtp_sink.wait_for(1)) == 1
    assert sleeps == [0.5]


def test_permanent_smtp_reply_fails_without_addresses(smtp_sink: SMTPSink, sleeps: Sleeps) -> None:
    smtp_sink.fail_next(1, 550)
    notifier = EmailNotifier(_email(smtp_sink), password=None, emails=EMAILS, sleep=sleeps)
    with pytest.raises(NotificationError, match="550") as info:
        notifier.send(_message())
    assert "1 of 2" in str(info.value) and sleeps == []
    assert len(smtp_sink.wait_for(1)) == 1  # the other reviewer still got theirs
    assert_secret_absent("@example.test", info.value)


def test_unreachable_smtp_fails_after_retries(sleeps: Sleeps) -> None:
    config = EmailNotifierConfig(host="127.0.0.1", port=free_port(), timeout=2)
    notifier = EmailNotifier(config, password=None, emails={"ana": "a@x.test"}, sleep=sleeps)
    with pytest.raises(NotificationError, match="could not connect") as info:
        notifier.send(_message())
    assert info.value.retryable and len(sleeps) == 3


@pytest.fixture
def vault(vault_config: VaultConfig) -> Iterator[VaultClient]:
    with VaultClient(vault_config, cache=SecretCache()) as client:
        yield client


def test_build_notifiers_resolves_vault_credentials(
    vault: VaultClient,
    notification_receiver: NotificationReceiver,
    smtp_sink: SMTPSink,
    secret_path: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    path = f"gates/{secrets.token_hex(4)}"
    password = f"planted-{secrets.token_hex(8)}"
    hook_secret = f"planted-{secrets.token_hex(8)}"
    slack_url = notification_receiver.url(secret_path)
    vault.write(path, {"slack": slack_url, "smtp": password, "hook": hook_secret})
    notifiers = build_notifiers(
        [
            SlackNotifierConfig.model_validate({"webhook_url": f"vault://secret/{path}#slack"}),
            WebhookNotifierConfig.model_validate(
                {"url": notification_receiver.url("/w"), "secret": f"vault://secret/{path}#hook"}
            ),
            _email(smtp_sink, username="mailer", password=f"vault://secret/{path}#smtp"),
        ],
        emails={"ana": "a@x.test"},
        vault=vault,
    )
    assert [n.kind for n in notifiers] == ["slack", "webhook", "email"]
    for notifier in notifiers:
        notifier.send(_message())
    requests = notification_receiver.wait_for(2)
    assert [r.path for r in requests] == [secret_path, "/w"]
    signature = requests[1].headers["x-guardflow-signature"]
    assert verify_webhook_signature(
        hook_secret,
        timestamp=requests[1].headers["x-guardflow-timestamp"],
        body=notification_receiver.bodies[1],
        signature=signature,
    )
    assert smtp_sink.wait_for(1) and smtp_sink.logins == ["mailer"]
    for planted in (secret_path, password, hook_secret):
        assert_secret_absent(planted, caplog.text, capsys.readouterr(), repr(notifiers))
