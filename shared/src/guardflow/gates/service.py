"""The orchestrator-neutral gate service: open, poll, decide and wait on human approval gates.

:class:`Gate` is what the Airflow operator, the Prefect task and scripts call. It derives the gate
id from the run context, so a retried or restarted worker finds the gate it opened and never
notifies twice: each notification is claimed in the store (``opened:<index>:<kind>``,
``escalation:<level>:<index>:<kind>``) before it is sent. What reviewers see (subject, body,
context, items) is masked with :mod:`guardflow.pii` first.

Notification failures do not lose the gate: the gate is stored before anything is sent, a failed
send is marked failed in the store (a later :meth:`Gate.open` of the same gate tries it again),
and, unless ``strict_notify=True``, :meth:`Gate.open` logs a warning (notifier kind and error
type, never the URL or message) and returns the pending gate: reviewers can still decide on the
review page or with the CLI. With ``strict_notify=True`` it raises
:class:`~guardflow.errors.NotificationError` after storing the gate.

Examples:
    >>> gate = Gate({"assignees": ["ana"]}, store_url="sqlite:///gates.db")  # doctest: +SKIP
    >>> record = gate.open(identity=RunIdentity(pipeline="orders"), subject="Ship it?")
    >>> gate.decide(record.id, reviewer="ana", option="approve", channel="api").outcome
    'approve'
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from guardflow.audit import AuditSink, audit_step
from guardflow.errors import ConfigurationError, GateNotFoundError, NotificationError
from guardflow.gates._new_gate import build_gate
from guardflow.gates.models import GateOutcome, GatePolicy, GateRecord, outcome_of
from guardflow.gates.routing import load_items
from guardflow.identity import RunIdentity, step_key

if TYPE_CHECKING:
    from guardflow.gates.notify import Notifier
    from guardflow.gates.store import GateStore
    from guardflow.gates.tokens import LinkSigner
    from guardflow.secrets.client import VaultClient

__all__ = ["Gate"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _identity_of(record: GateRecord) -> RunIdentity:
    return RunIdentity(
        orchestrator=record.orchestrator,
        pipeline=record.pipeline,
        run_id=record.run_id,
        task_id=record.task_id,
        map_index=record.map_index,
    )


class Gate:
    """Open, poll, decide and wait on approval gates with one policy, store and set of notifiers.

    Args:
        policy: A :class:`GatePolicy`, a mapping, a YAML path, or ``None`` (defaults).
        store: The gate store; default ``GateStore(store_url or policy.store_url)``.
        notifiers: Where requests are announced; default built from ``policy.notifiers`` (with
            ``policy.emails`` and ``vault`` for ``vault://`` references) on first use.
        signer: Signs personal decision links; default
            ``LinkSigner.from_ref(policy.signing_key_ref, vault=vault)``, built on first use.
        vault: Vault client for ``vault://`` references in notifier configs and the signing key.
        audit_sink: Where audit events go (default :func:`guardflow.audit.default_sink`).
        store_url: SQLAlchemy URL of the store when ``store`` is not given.
        strict_notify: Raise :class:`NotificationError` from :meth:`open` when a notifier fails
            (after the gate is stored) instead of logging a warning.

    Attributes:
        policy: The loaded policy used to open gates (stored gates keep their own copy).
        store: The gate store.
    """

    def __init__(
        self,
        policy: GatePolicy | dict[str, Any] | str | os.PathLike[str] | None = None,
        *,
        store: GateStore | None = None,
        notifiers: Sequence[Notifier] | None = None,
        signer: LinkSigner | None = None,
        vault: VaultClient | None = None,
        audit_sink: AuditSink | None = None,
        store_url: str | None = None,
        strict_notify: bool = False,
    ) -> None:
        self.policy = GatePolicy.load(policy)
        if store is None:
            from guardflow.gates.store import GateStore

            store = GateStore(store_url or self.policy.store_url)
        self.store = store
        self._notifiers = list(notifiers) if notifiers is not None else None
        self._signer = signer
        self._vault = vault
        self._audit_sink = audit_sink
        self.strict_notify = strict_notify

    # --- ids, links, outcome -----------------------------------------------------------------

    @staticmethod
    def gate_id(identity: RunIdentity, *, subject: str, key: str = "") -> str:
        """Return the deterministic id of the gate a step opens.

        Args:
            identity: The run identity (its attempt number is not part of the id).
            subject: The gate's subject, as given to :meth:`open` (before masking).
            key: Distinguishes several gates with one subject in one step.

        Returns:
            32 hex characters, the same on every retry of the step.
        """
        digest = hashlib.sha256(f"{subject}\0{key}".encode()).hexdigest()
        return step_key(identity, digest, purpose="gate")

    @property
    def notifiers(self) -> list[Notifier]:
        """The notifiers, built from the policy on first use when none were given."""
        if self._notifiers is None:
            from guardflow.gates.notify import build_notifiers

            self._notifiers = list(
                build_notifiers(self.policy.notifiers, emails=self.policy.emails, vault=self._vault)
            )
        return self._notifiers

    @property
    def signer(self) -> LinkSigner:
        """The link signer, built from ``policy.signing_key_ref`` on first use.

        Raises:
            ConfigurationError: No signing key is configured or it is too short.
        """
        if self._signer is None:
            from guardflow.gates.tokens import LinkSigner

            self._signer = LinkSigner.from_ref(self.policy.signing_key_ref, vault=self._vault)
        return self._signer

    def links(
        self, record: GateRecord, *, reviewers: Iterable[str] | None = None
    ) -> dict[str, str]:
        """Return personal signed decision links, reviewer name to URL.

        Args:
            record: The gate.
            reviewers: Whom to sign links for; default every reviewer eligible at the gate's
                escalation level (groups expanded). When anyone may vote (no assignees) and
                ``reviewers`` is not given, there are no personal links. Names given here that
                are not eligible are left out.

        Returns:
            Links valid for ``policy.link_ttl_s`` seconds, sorted by reviewer.

        Raises:
            ConfigurationError: Links are needed but no signing key is configured.
        """
        from guardflow.gates.tokens import link_url

        eligible = record.policy.eligible_reviewers(record.escalation_level)
        if reviewers is None:
            names = sorted(eligible or ())
        else:
            names = sorted({r for r in reviewers if eligible is None or r in eligible})
        if not names:
            return {}
        signer = self.signer
        ttl = record.policy.link_ttl_s
        base = record.policy.base_url
        return {name: link_url(base, signer.issue(record.id, name, ttl_s=ttl)) for name in names}

    def outcome(self, record: GateRecord) -> GateOutcome:
        """Return the gate's JSON-safe outcome, with the number of corrected items."""
        return outcome_of(record, corrections=self.store.corrections(record.id))

    # --- open --------------------------------------------------------------------------------

    def open(
        self,
        *,
        identity: RunIdentity,
        subject: str,
        body: str = "",
        context: Mapping[str, Any] | None = None,
        items: Sequence[Mapping[str, Any]] | str | os.PathLike[str] | None = None,
        key: str = "",
        external: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> GateRecord:
        """Create the gate (or get the one this step already opened) and announce it once.

        Items are routed by ``policy.routing`` when set (only those needing a human are stored;
        if none do, the gate is created resolved with channel ``routing`` and nobody is
        notified); without a rule every item goes to review. Subject, body, context and items
        are masked before they are stored; an item id that is itself PII is stored as
        ``h:<sha256 prefix>`` of the id. Each notifier's "opened" message is claimed in the
        store first, so a retried or restarted step never sends it twice.

        Args:
            identity: Where the step runs (orchestrator, pipeline, run, task, map index).
            subject: One-line subject (also part of the gate id).
            body: Markdown body.
            context: Data shown to reviewers (masked).
            items: Items to review (mappings with the routing rule's fields), or the URI of a
                Parquet, CSV or JSONL file of them (read only when the gate is created, so
                pipelines pass a file, not data, between steps).
            key: Distinguishes several gates with one subject in one step.
            external: Orchestrator data to resume a run (e.g. the Prefect flow run id).
            now: The current time (UTC), for tests; default the clock.

        Returns:
            The stored gate (possibly already resolved, expired or decided).

        Raises:
            NotificationError: Only with ``strict_notify=True``: a notifier failed (the gate is
                stored and pending).
            InputDataError: Items are not mappings or share an id.
        """
        now = now or _utcnow()
        gate_id = self.gate_id(identity, subject=subject, key=key)
        with audit_step("gate", identity=identity, sink=self._audit_sink) as rec:
            rec.attributes["gate.action"] = "open"
            rec.attributes["gate.id"] = gate_id
            try:
                record = self.store.get(gate_id, now=now)
                created = False
            except GateNotFoundError:
                rows = load_items(items)
                new, gate_items = build_gate(
                    self.policy, gate_id, identity, subject, body, context, rows, external, now
                )
                record, created = self.store.create(new, gate_items)
            rec.attributes["gate.created"] = created
            rec.attributes["gate.status"] = record.status.value
            rec.counts["items_reviewed"] = record.item_count
            rec.counts["items_passed"] = record.passed_count
            if record.outcome is not None:
                rec.attributes["gate.outcome"] = record.outcome
            if record.is_open:
                failed = self._announce(record, "opened", self._opened_links(record))
                rec.counts["notifications_failed"] = len(failed)
                if failed and self.strict_notify:
                    raise failed[0]
            return record

    def _opened_links(self, record: GateRecord) -> dict[str, str]:
        return self._safe_links(record, None)

    def _safe_links(self, record: GateRecord, reviewers: Iterable[str] | None) -> dict[str, str]:
        if not self.notifiers:
            return {}
        try:
            return self.links(record, reviewers=reviewers)
        except ConfigurationError as exc:
            if self.strict_notify:
                raise
            logger.warning(
                "gate %s: no personal links in notifications (%s); reviewers can use the page",
                record.id,
                type(exc).__name__,
            )
            return {}

    def _announce(
        self, record: GateRecord, event: str, links: Mapping[str, str], *, level: int = 0
    ) -> list[NotificationError]:
        """Send ``event`` once per notifier (claimed in the store first); return the failures."""
        notifiers = self.notifiers
        if not notifiers:
            return []
        from guardflow.gates.notify import GateMessage
        from guardflow.gates.tokens import gate_page_url

        message = GateMessage(
            gate=record,
            event=event,
            page_url=gate_page_url(record.policy.base_url, record.id),
            links=dict(links),
        )
        failures: list[NotificationError] = []
        for index, notifier in enumerate(notifiers):
            kind = getattr(notifier, "kind", type(notifier).__name__)
            claim = (
                f"opened:{index}:{kind}"
                if event == "opened"
                else f"escalation:{level}:{index}:{kind}"
            )
            if not self.store.claim_notification(record.id, claim):
                continue
            try:
                notifier.send(message)
            except Exception as exc:
                error = (
                    exc
                    if isinstance(exc, NotificationError)
                    else NotificationError(
                        f"{kind} notifier failed ({type(exc).__name__})", gate_id=record.id
                    )
                )
                self.store.finish_notification(record.id, claim, ok=False, error=str(error))
                logger.warning(
                    "gate %s: %s notification via %s failed (%s); the gate stays open, "
                    "reviewers can decide on the review page or with the CLI",
                    record.id,
                    event,
                    kind,
                    error,
                )
                failures.append(error)
            else:
                self.store.finish_notification(record.id, claim, ok=True)
        return failures

    # --- poll, wakeup, decide, wait ------------------------------------------------------------

    def poll(self, gate_id: str, *, now: datetime | None = None) -> GateRecord:
        """Return the gate after applying due expiry and escalations.

        Each escalation step whose delay has passed raises the gate's level (once, in the store)
        and notifies the reviewers it adds, once per notifier and level. Notification failures
        are logged, never raised.

        Args:
            gate_id: The gate.
            now: The current time (UTC), for tests; default the clock.

        Raises:
            GateNotFoundError: No such gate.
        """
        now = now or _utcnow()
        record = self.store.get(gate_id, now=now)
        if not record.is_open:
            return record
        steps = record.policy.escalation
        due = [
            level
            for level, step in enumerate(steps, start=1)
            if record.created_at + timedelta(seconds=step.after_s) <= now
        ]
        if not due:
            return record
        start = record.escalation_level
        if max(due) > start:
            for level in due:
                if level > start:
                    self.store.escalate(gate_id, level, now=now)
            record = self.store.get(gate_id, now=now)
        if not record.is_open or not self.notifiers:
            return record
        sent = {n.get("key") for n in self.store.notifications(gate_id)}
        for level in due:
            if all(
                f"escalation:{level}:{i}:{getattr(n, 'kind', type(n).__name__)}" in sent
                for i, n in enumerate(self.notifiers)
            ):
                continue
            before = record.policy.eligible_reviewers(level - 1) or set()
            after = record.policy.eligible_reviewers(level) or set()
            links = self._safe_links(record, sorted(after - before))
            self._announce(record, "escalation", links, level=level)
        return record

    def next_wakeup(self, record: GateRecord, *, now: datetime | None = None) -> datetime | None:
        """Return when the gate next needs a poll: its next escalation or its expiry.

        Args:
            record: The gate.
            now: When given, a time already past is returned as ``now``.

        Returns:
            ``None`` when the gate is closed or has neither pending escalation nor expiry.
        """
        if not record.is_open:
            return None
        times = [
            record.created_at + timedelta(seconds=step.after_s)
            for level, step in enumerate(record.policy.escalation, start=1)
            if level > record.escalation_level
        ]
        if record.expires_at is not None:
            times.append(record.expires_at)
        if not times:
            return None
        earliest = min(times)
        return max(earliest, now) if now is not None else earliest

    def decide(
        self,
        gate_id: str,
        *,
        reviewer: str,
        option: str,
        channel: str,
        comment: str | None = None,
    ) -> GateRecord:
        """Record one reviewer's vote (atomically, in the store) and audit it.

        Args:
            gate_id: The gate.
            reviewer: Who votes (as authenticated by the channel).
            option: One of the gate's options.
            channel: ``link``, ``page``, ``cli``, ``prefect`` or ``api``.
            comment: Free text, stored with the vote, never logged or audited.

        Returns:
            The gate after the vote (resolved when the option reached its quorum).

        Raises:
            GateNotFoundError: No such gate.
            GateClosedError: The gate is resolved or expired; nothing changed.
            GateVoteRefusedError: Not eligible, already voted, or not one of the options.
        """
        identity = _identity_of(self.store.get(gate_id))
        with audit_step("gate", identity=identity, sink=self._audit_sink, actor=reviewer) as rec:
            rec.attributes["gate.action"] = "decide"
            rec.attributes["gate.id"] = gate_id
            rec.attributes["gate.channel"] = channel
            rec.attributes["gate.option"] = option
            record = self.store.decide(
                gate_id, reviewer=reviewer, option=option, channel=channel, comment=comment
            )
            rec.attributes["gate.status"] = record.status.value
            rec.counts["votes"] = len(record.votes)
            if record.outcome is not None:
                rec.attributes["gate.outcome"] = record.outcome
            return record

    def wait(self, gate_id: str, *, timeout_s: float | None = None) -> GateOutcome:
        """Block until the gate is resolved or expired, polling every ``policy.poll_interval_s``.

        For scripts and the CLI; orchestrator adapters defer (Airflow) or pause (Prefect)
        instead of holding a worker here.

        Args:
            gate_id: The gate.
            timeout_s: Give up waiting after this many seconds; ``None`` waits until the gate
                closes (it does, at the latest, when it expires).

        Returns:
            The outcome; when ``timeout_s`` passes first, the *pending* outcome (status
            ``pending``, outcome ``None``) is returned rather than raising, since the gate is
            still open and can be waited on again.

        Raises:
            GateNotFoundError: No such gate.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.poll(gate_id)
            if not record.is_open:
                return self.outcome(record)
            interval = record.policy.poll_interval_s
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self.outcome(record)
                interval = min(interval, remaining)
            time.sleep(interval)
