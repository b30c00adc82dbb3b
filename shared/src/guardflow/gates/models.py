"""Data models of approval gates: the policy, the stored gate, votes, items and the outcome.

A :class:`GatePolicy` is data (loadable from YAML) so one file serves an Airflow DAG, a Prefect flow
and the CLI. A :class:`GateRecord` is what the store holds; a :class:`GateOutcome` is the small,
JSON-safe result a task returns (Airflow XCom, Prefect task result): ids, names, counts, never data.
"""

from __future__ import annotations

import os
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from guardflow.errors import ConfigurationError

__all__ = [
    "APPROVE",
    "REJECT",
    "Decision",
    "EmailNotifierConfig",
    "Escalation",
    "GateItem",
    "GateOutcome",
    "GatePolicy",
    "GateRecord",
    "GateStatus",
    "NotifierConfig",
    "RoutingRule",
    "SlackNotifierConfig",
    "TeamsNotifierConfig",
    "TimeoutAction",
    "WebhookNotifierConfig",
    "outcome_of",
]

APPROVE = "approve"
REJECT = "reject"


class GateStatus(str, Enum):
    """Where a gate stands: waiting, decided, or expired with the ``fail`` action."""

    PENDING = "pending"
    RESOLVED = "resolved"
    EXPIRED = "expired"


class TimeoutAction(str, Enum):
    """What happens when a gate expires undecided: resolve it approved or rejected, or fail."""

    APPROVE = "approve"
    REJECT = "reject"
    FAIL = "fail"


class Escalation(BaseModel):
    """Notify more reviewers when a gate is still pending after a delay.

    Args:
        after_s: Seconds after the gate opened.
        assignees: Users or ``group:<name>`` entries who are notified and may vote from then on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_s: float = Field(gt=0)
    assignees: list[str] = Field(min_length=1)


class RoutingRule(BaseModel):
    """Which items need a human: those whose score field is below a threshold.

    Args:
        score_field: The item field holding the model's confidence (dotted path allowed).
        below: Items with a score strictly below this (or no score at all) go to review.
        id_field: The item field that identifies an item; the row position when absent.
        label_field: The item field holding the predicted label reviewers may correct.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    score_field: str = "confidence"
    below: float = 0.8
    id_field: str | None = "id"
    label_field: str = "prediction"


class SlackNotifierConfig(BaseModel):
    """A Slack incoming webhook; the URL is a credential (a ``vault://`` reference is allowed).

    ``personal_links`` adds each reviewer's signed link to the message: only for private
    channels or DMs, since a link lets whoever holds it vote as that reviewer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["slack"] = "slack"
    webhook_url: SecretStr
    personal_links: bool = False


class TeamsNotifierConfig(BaseModel):
    """A Microsoft Teams incoming webhook; the URL is a credential (``vault://`` allowed)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["teams"] = "teams"
    webhook_url: SecretStr
    personal_links: bool = False


class EmailNotifierConfig(BaseModel):
    """Email over SMTP: one message per reviewer, each with the reviewer's own signed links.

    Args:
        host: SMTP server host.
        port: SMTP port (25, 465 with ``ssl``, 587 with ``starttls``).
        sender: The From address.
        username: SMTP login, if the server needs one.
        password: SMTP password (``vault://`` reference allowed).
        starttls: Upgrade the connection with STARTTLS.
        ssl: Connect with implicit TLS.
        timeout: Seconds per SMTP operation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["email"] = "email"
    host: str = "localhost"
    port: int = 25
    sender: str = "guardflow@localhost"
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0


class WebhookNotifierConfig(BaseModel):
    """A generic JSON webhook; the body is signed with HMAC-SHA256 when a secret is set.

    The signature goes in ``X-Guardflow-Signature: sha256=<hex>`` over the exact body bytes, with
    ``X-Guardflow-Timestamp`` included in the signed material (``<timestamp>.<body>``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["webhook"] = "webhook"
    url: str
    secret: SecretStr | None = None


NotifierConfig = Annotated[
    SlackNotifierConfig | TeamsNotifierConfig | EmailNotifierConfig | WebhookNotifierConfig,
    Field(discriminator="kind"),
]


class GatePolicy(BaseModel):
    """How a gate decides: options, quorum, who may vote, escalation, expiry and notifications.

    Args:
        options: The choices reviewers have; ``approve``/``reject`` or named branches.
        reject_options: Options that mean "stop"; one vote for one of them decides at once
            unless ``required_rejections`` says otherwise.
        required_approvals: Distinct reviewers who must choose the same non-reject option (M of N).
        required_rejections: Distinct reviewers needed to resolve a reject option.
        assignees: Users (``alice``) and groups (``group:ml-reviewers``) who may vote; empty means
            anyone who can authenticate to a channel.
        groups: Group membership: group name to user names.
        emails: User name to email address, for the email notifier.
        escalation: Later notifications (and extra assignees) while the gate is pending.
        expires_after_s: Seconds until the gate expires; ``None`` never expires.
        on_timeout: What expiry does.
        notifiers: Where the request is announced.
        base_url: Public URL of the review page (``guardflow gates serve``), used in links.
        link_ttl_s: Lifetime of a signed decision link.
        signing_key_ref: Where the link-signing key lives: ``vault://...`` or ``env:NAME``;
            default ``env:GUARDFLOW_GATES_SIGNING_KEY``.
        store_url: SQLAlchemy URL of the gate store; default ``$GUARDFLOW_GATES_DB`` or a SQLite
            file under ``~/.guardflow``.
        routing: When set, only items the rule selects go to review; the rest pass.
        poll_interval_s: How often waiting adapters look at the store.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    options: list[str] = Field(default_factory=lambda: [APPROVE, REJECT], min_length=1)
    reject_options: list[str] = Field(default_factory=lambda: [REJECT])
    required_approvals: int = Field(default=1, ge=1)
    required_rejections: int = Field(default=1, ge=1)
    assignees: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    emails: dict[str, str] = Field(default_factory=dict)
    escalation: list[Escalation] = Field(default_factory=list)
    expires_after_s: float | None = Field(default=86_400.0, gt=0)
    on_timeout: TimeoutAction = TimeoutAction.REJECT
    notifiers: list[NotifierConfig] = Field(default_factory=list)
    base_url: str = "http://127.0.0.1:8765"
    link_ttl_s: float = Field(default=7 * 86_400.0, gt=0)
    signing_key_ref: str | None = None
    store_url: str | None = None
    routing: RoutingRule | None = None
    poll_interval_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> GatePolicy:
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be distinct")
        unknown = [o for o in self.reject_options if o not in self.options]
        if unknown:
            raise ValueError("reject_options must be among options")
        named = {a[6:] for a in self._all_assignee_entries() if a.startswith("group:")}
        missing = sorted(named - set(self.groups))
        if missing:
            raise ValueError(f"groups not defined in 'groups': {', '.join(missing)}")
        return self

    def _all_assignee_entries(self) -> list[str]:
        entries = list(self.assignees)
        for step in self.escalation:
            entries.extend(step.assignees)
        return entries

    def eligible_reviewers(self, escalation_level: int = 0) -> set[str] | None:
        """Return the users who may vote at an escalation level, or ``None`` when anyone may.

        Args:
            escalation_level: How many escalation steps have fired (0: none).
        """
        entries = list(self.assignees)
        for step in self.escalation[:escalation_level]:
            entries.extend(step.assignees)
        if not entries:
            return None
        users: set[str] = set()
        for entry in entries:
            if entry.startswith("group:"):
                users.update(self.groups.get(entry[6:], []))
            else:
                users.add(entry)
        return users

    def quorum(self, option: str) -> int:
        """Return how many distinct reviewers must choose ``option`` to resolve the gate."""
        if option in self.reject_options:
            return self.required_rejections
        return self.required_approvals

    def public_dict(self) -> dict[str, Any]:
        """Return the policy as JSON-safe data without its notifiers (they hold credentials).

        This is what the store keeps with a gate; :meth:`load` reads it back (with no notifiers).
        """
        return self.model_dump(mode="json", exclude={"notifiers"})

    @classmethod
    def load(
        cls, source: GatePolicy | dict[str, Any] | str | os.PathLike[str] | None
    ) -> GatePolicy:
        """Build a policy from a policy, a mapping, a YAML file path, or ``None`` (defaults).

        Raises:
            ConfigurationError: The file is unreadable or not a valid policy (the message names
                fields and rules, never values).
        """
        if source is None:
            return cls()
        if isinstance(source, GatePolicy):
            return source
        if isinstance(source, dict):
            data: Any = source
            what = "gate policy"
        else:
            import yaml

            what = f"gate policy {os.fspath(source)!r}"
            try:
                data = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
            except OSError as exc:
                raise ConfigurationError(f"cannot read {what}: {exc.strerror}") from None
            except yaml.YAMLError:
                raise ConfigurationError(f"{what} is not valid YAML; check its syntax") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError.from_validation(exc, what=what) from None


class Decision(BaseModel):
    """One reviewer's vote, as recorded.

    Args:
        gate_id: The gate.
        reviewer: Who voted (user name as authenticated by the channel).
        option: What they chose.
        channel: ``link``, ``page``, ``cli``, ``prefect-ui``, ``api`` or ``timeout``.
        comment: Free text the reviewer typed (stored, never logged).
        decided_at: When (UTC).
    """

    model_config = ConfigDict(frozen=True)

    gate_id: str
    reviewer: str
    option: str
    channel: str
    comment: str | None = None
    decided_at: datetime


class GateItem(BaseModel):
    """One item sent to review (masked data only), with a reviewer's label correction if any.

    Args:
        gate_id: The gate.
        item_id: The item's id (its id field, else its position).
        data: The item as shown to reviewers (already masked).
        prediction: The predicted label.
        score: The confidence that routed it to review.
        label: The corrected label, when a reviewer corrected it.
        corrected_by: Who corrected it.
        corrected_at: When.
    """

    gate_id: str
    item_id: str
    data: dict[str, Any] = Field(default_factory=dict)
    prediction: Any = None
    score: float | None = None
    label: Any = None
    corrected_by: str | None = None
    corrected_at: datetime | None = None


class GateRecord(BaseModel):
    """A gate as the store holds it: the request, its state and its votes.

    Args:
        id: Deterministic id (same run context and input give the same id).
        subject: One-line subject.
        body: Markdown body.
        context: Masked context shown to reviewers.
        policy: The policy the gate was opened with.
        status: Pending, resolved or expired.
        outcome: The option the gate resolved to (``None`` while pending or when expired/failed).
        orchestrator: ``airflow``, ``prefect`` or ``cli``.
        pipeline: DAG id or flow name.
        run_id: DAG run id or flow run id.
        task_id: Task id or task key.
        map_index: Mapped index, -1 when not mapped.
        created_at: When the gate opened (UTC).
        expires_at: When it expires, if ever.
        resolved_at: When it was resolved or expired.
        resolution_channel: The channel of the deciding vote, or ``timeout``.
        escalation_level: How many escalation steps have fired.
        external: Orchestrator data needed to resume a run (e.g. the Prefect flow run id).
        votes: The votes, oldest first.
        item_count: Items sent to review.
        passed_count: Items the routing rule let through without review.
    """

    id: str
    subject: str
    body: str = ""
    context: dict[str, Any] = Field(default_factory=dict)
    policy: GatePolicy
    status: GateStatus = GateStatus.PENDING
    outcome: str | None = None
    orchestrator: str = "cli"
    pipeline: str = "adhoc"
    run_id: str = "local"
    task_id: str = "step"
    map_index: int = -1
    created_at: datetime
    expires_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution_channel: str | None = None
    escalation_level: int = 0
    external: dict[str, Any] = Field(default_factory=dict)
    votes: list[Decision] = Field(default_factory=list)
    item_count: int = 0
    passed_count: int = 0

    @property
    def is_open(self) -> bool:
        """Whether the gate still accepts votes (pending; expiry is applied by the store)."""
        return self.status is GateStatus.PENDING

    def tally(self) -> dict[str, int]:
        """Return distinct votes per option."""
        counts: dict[str, int] = {}
        for vote in self.votes:
            counts[vote.option] = counts.get(vote.option, 0) + 1
        return counts


class GateOutcome(BaseModel):
    """The small, JSON-safe result of waiting on a gate (XCom, Prefect result, CLI output).

    Args:
        gate_id: The gate.
        status: ``resolved`` or ``expired`` (or ``pending`` when reported early).
        outcome: The chosen option; ``None`` when the gate expired with ``fail``.
        approved: Whether the outcome is not a reject option.
        decided_by: Reviewers whose votes counted for the outcome.
        channel: Channel of the deciding vote, or ``timeout``.
        resolved_at: When, as ISO 8601 text.
        votes: Votes per option.
        items_reviewed: Items sent to review.
        items_passed: Items let through by the routing rule.
        corrections: Items whose label a reviewer corrected.
        timed_out: Whether the outcome came from the on-timeout action.
    """

    model_config = ConfigDict(frozen=True)

    gate_id: str
    status: GateStatus
    outcome: str | None
    approved: bool
    decided_by: list[str] = Field(default_factory=list)
    channel: str | None = None
    resolved_at: str | None = None
    votes: dict[str, int] = Field(default_factory=dict)
    items_reviewed: int = 0
    items_passed: int = 0
    corrections: int = 0
    timed_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-safe data (for XCom and task results)."""
        return self.model_dump(mode="json")


def outcome_of(record: GateRecord, *, corrections: int = 0) -> GateOutcome:
    """Summarise a gate record as a :class:`GateOutcome` (ids, names and counts only).

    Args:
        record: The gate as stored.
        corrections: How many of its items a reviewer relabelled.

    Returns:
        The outcome; ``decided_by`` lists reviewers whose vote matches the outcome.
    """
    outcome = record.outcome
    return GateOutcome(
        gate_id=record.id,
        status=record.status,
        outcome=outcome,
        approved=outcome is not None and outcome not in record.policy.reject_options,
        decided_by=[
            v.reviewer for v in record.votes if outcome is not None and v.option == outcome
        ],
        channel=record.resolution_channel,
        resolved_at=record.resolved_at.isoformat() if record.resolved_at else None,
        votes=record.tally(),
        items_reviewed=record.item_count,
        items_passed=record.passed_count,
        corrections=corrections,
        timed_out=record.resolution_channel == "timeout",
    )
