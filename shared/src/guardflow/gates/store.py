"""The gate store: the single source of truth for gates, votes, items and notifications.

Every change is one transaction that locks the gate first (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``SELECT ... FOR UPDATE`` on the gate row), so concurrent deciders in threads, processes or
machines serialise: quorum counts distinct reviewers, the first resolution wins, and a decision
on a resolved or expired gate is refused without changing anything. Expiry is applied lazily and
atomically whenever a gate is read or decided after ``expires_at``. Comments are stored with the
vote and never copied into events, logs or exception messages.

The PostgreSQL path is written portably (``with_for_update``, insert-then-recover on unique
violations) but no PostgreSQL server is available in this project's test environment; the tests
run against real SQLite files.

Examples:
    >>> from datetime import datetime, timezone
    >>> from guardflow.gates.models import GatePolicy, GateRecord
    >>> store = GateStore("sqlite://")
    >>> record = GateRecord(id="g1", subject="Ship?", policy=GatePolicy(),
    ...                     created_at=datetime.now(timezone.utc))
    >>> store.create(record)[1]
    True
    >>> store.decide("g1", reviewer="ana", option="approve", channel="cli").outcome
    'approve'
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from guardflow.errors import MissingExtraError

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine, Row
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(module="sqlalchemy", extra="gates") from exc

from guardflow.errors import GateClosedError, GateNotFoundError, GateTokenError
from guardflow.gates import _schema as S
from guardflow.gates._rows import (
    dataset_rows,
    event_of,
    insert_gate,
    item_of,
    load_item_rows,
    load_records,
    notification_of,
    record_event,
)
from guardflow.gates._rules import (
    check_eligible,
    check_vote,
    closed_error,
    is_due,
    may_vote,
    not_found_error,
    timeout_result,
)
from guardflow.gates.models import GateItem, GatePolicy, GateRecord, GateStatus

__all__ = ["GateStore"]

_list = builtins.list  # the class defines a method named ``list``


def _now(now: datetime | None) -> datetime:
    value = S.utc(now)
    return value if value is not None else datetime.now(timezone.utc)


class GateStore:
    """Gates, votes, items, notifications and their history in a SQL database.

    Args:
        url: SQLAlchemy URL; ``None`` uses ``$GUARDFLOW_GATES_DB`` or
            ``sqlite:///~/.guardflow/gates.db`` (the folder is created). Use PostgreSQL
            (``postgresql+psycopg://...``) when workers on several machines share gates.

    Raises:
        ConfigurationError: The URL is invalid or its driver is missing.
        GateError: The database is unreachable (retryable).
    """

    def __init__(self, url: str | None = None) -> None:
        self._url = url or S.default_url()
        self._engine: Engine = S.engine_for(self._url)

    @property
    def url(self) -> str:
        """The store URL with any password hidden."""
        return S.safe_url(self._url)

    def __repr__(self) -> str:
        return f"GateStore({self.url!r})"

    # -- reading helpers ---------------------------------------------------------------------

    def _row(self, conn: Connection, gate_id: str, *, lock: bool) -> Row[Any]:
        query = sa.select(S.gates).where(S.gates.c.id == gate_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise not_found_error(gate_id)
        return row

    def _lock_open(
        self, conn: Connection, gate_id: str, now: datetime | None
    ) -> tuple[Row[Any], datetime, GateClosedError | None]:
        """Lock the gate, read the clock, apply a due expiry; say if it no longer takes votes.

        The clock is read once the gate is locked, so recorded times follow the recording order.
        A closed gate's error is returned, not raised: the caller raises it after the commit, so
        a lazily applied expiry is kept and nothing else is recorded.
        """
        row = self._row(conn, gate_id, lock=True)
        when = _now(now)
        if self._expire_locked(conn, row, when):
            row = self._row(conn, gate_id, lock=False)
        if row.status != GateStatus.PENDING.value:
            return row, when, closed_error(gate_id, row.status)
        return row, when, None

    def _record(self, conn: Connection, gate_id: str) -> GateRecord:
        return load_records(conn, [self._row(conn, gate_id, lock=False)])[0]

    def _expire_locked(self, conn: Connection, row: Row[Any], now: datetime) -> bool:
        """Apply the on-timeout action to a locked, due gate; return whether it changed."""
        if not is_due(row, now):
            return False
        status, outcome = timeout_result(GatePolicy.model_validate(row.policy))
        at = row.expires_at
        conn.execute(
            S.gates.update()
            .where(S.gates.c.id == row.id, S.gates.c.status == GateStatus.PENDING.value)
            .values(
                status=status.value, outcome=outcome, resolved_at=at, resolution_channel="timeout"
            )
        )
        kind = "resolved" if status is GateStatus.RESOLVED else "expired"
        record_event(conn, row.id, at, kind, channel="timeout", outcome=outcome)
        return True

    def _expire_ids(self, ids: Sequence[str], now: datetime) -> _list[str]:
        changed: _list[str] = []
        if not ids:
            return changed
        with S.write_tx(self._engine) as conn:
            for gate_id in ids:
                row = conn.execute(
                    sa.select(S.gates).where(S.gates.c.id == gate_id).with_for_update()
                ).first()
                if row is not None and self._expire_locked(conn, row, now):
                    changed.append(gate_id)
        return changed

    # -- gates -------------------------------------------------------------------------------

    def create(self, record: GateRecord, items: Sequence[GateItem] = ()) -> tuple[GateRecord, bool]:
        """Store a new gate with its items, or return the gate already stored under its id.

        A retried task computes the same id and gets the stored gate back (``created`` False);
        nothing of the stored gate is overwritten.

        Args:
            record: The gate to store (its votes, if any, are stored too).
            items: Items sent to review.

        Returns:
            ``(stored record, created)``; due expiry is applied to an existing gate.
        """
        try:
            with S.write_tx(self._engine) as conn:
                exists = conn.execute(
                    sa.select(S.gates.c.id).where(S.gates.c.id == record.id).with_for_update()
                ).first()
                if exists is None:
                    insert_gate(conn, record, items, created=_now(record.created_at))
                    return self._record(conn, record.id), True
        except sa.exc.IntegrityError:
            pass  # PostgreSQL: another worker inserted the same id between our SELECT and INSERT
        return self.get(record.id), False

    def get(self, gate_id: str, *, now: datetime | None = None) -> GateRecord:
        """Return a gate, after applying its on-timeout action if it is past ``expires_at``.

        Raises:
            GateNotFoundError: No gate has this id.
        """
        when = _now(now)
        with S.read_tx(self._engine) as conn:
            row = self._row(conn, gate_id, lock=False)
            if not is_due(row, when):
                return load_records(conn, [row])[0]
        with S.write_tx(self._engine) as conn:
            self._expire_locked(conn, self._row(conn, gate_id, lock=True), when)
            return self._record(conn, gate_id)

    def expire_due(self, *, now: datetime | None = None) -> _list[GateRecord]:
        """Apply the on-timeout action to every pending gate past its expiry.

        Returns:
            The gates this call expired (already expired gates are not listed again).
        """
        when = _now(now)
        with S.read_tx(self._engine) as conn:
            due = [
                r.id
                for r in conn.execute(
                    sa.select(S.gates.c.id).where(
                        S.gates.c.status == GateStatus.PENDING.value,
                        S.gates.c.expires_at.is_not(None),
                        S.gates.c.expires_at <= when,
                    )
                )
            ]
        changed = self._expire_ids(due, when)
        if not changed:
            return []
        with S.read_tx(self._engine) as conn:
            rows = conn.execute(sa.select(S.gates).where(S.gates.c.id.in_(changed))).all()
            return load_records(conn, rows)

    def list(
        self,
        *,
        status: GateStatus | None = None,
        reviewer: str | None = None,
        pipeline: str | None = None,
        limit: int = 200,
    ) -> _list[GateRecord]:
        """List gates, newest first, after applying due expiries.

        Args:
            status: Only gates in this state.
            reviewer: Only pending gates this reviewer may still vote on (eligible at the gate's
                escalation level and not voted yet).
            pipeline: Only gates of this DAG or flow.
            limit: At most this many gates.
        """
        self.expire_due()
        query = sa.select(S.gates).order_by(S.gates.c.created_at.desc(), S.gates.c.id.desc())
        if status is not None:
            query = query.where(S.gates.c.status == GateStatus(status).value)
        if reviewer is not None:
            query = query.where(S.gates.c.status == GateStatus.PENDING.value)
        if pipeline is not None:
            query = query.where(S.gates.c.pipeline == pipeline)
        if reviewer is None:
            query = query.limit(limit)
        with S.read_tx(self._engine) as conn:
            records = load_records(conn, conn.execute(query).all())
        if reviewer is not None:
            records = [r for r in records if may_vote(r, reviewer)][:limit]
        return records

    # -- decisions ---------------------------------------------------------------------------

    def decide(
        self,
        gate_id: str,
        *,
        reviewer: str,
        option: str,
        channel: str,
        comment: str | None = None,
        now: datetime | None = None,
    ) -> GateRecord:
        """Record one reviewer's vote atomically; resolve the gate when the option has quorum.

        Args:
            gate_id: The gate.
            reviewer: Who votes, as authenticated by the channel.
            option: One of the policy's options.
            channel: ``link``, ``page``, ``cli``, ``prefect``, ``api``...
            comment: Free text; stored with the vote, never logged or put in events.
            now: The decision time (default: now, UTC).

        Returns:
            The gate after the vote.

        Raises:
            GateNotFoundError: No gate has this id.
            GateClosedError: The gate is resolved or expired (also when this call expired it);
                nothing was recorded.
            GateVoteRefusedError: Unknown option, reviewer not eligible, or already voted.
        """
        with S.write_tx(self._engine) as conn:
            row, when, closed = self._lock_open(conn, gate_id, now)
            if closed is None:
                policy = GatePolicy.model_validate(row.policy)
                check_vote(conn, row, policy, reviewer, option)
                conn.execute(
                    S.votes.insert().values(
                        gate_id=gate_id,
                        reviewer=reviewer,
                        option=option,
                        channel=channel,
                        comment=comment,
                        decided_at=when,
                    )
                )
                record_event(
                    conn, gate_id, when, "voted", actor=reviewer, channel=channel, option=option
                )
                count = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(S.votes)
                    .where(S.votes.c.gate_id == gate_id, S.votes.c.option == option)
                ).scalar_one()
                if count >= policy.quorum(option):
                    conn.execute(
                        S.gates.update()
                        .where(S.gates.c.id == gate_id)
                        .values(
                            status=GateStatus.RESOLVED.value,
                            outcome=option,
                            resolved_at=when,
                            resolution_channel=channel,
                        )
                    )
                    record_event(
                        conn,
                        gate_id,
                        when,
                        "resolved",
                        actor=reviewer,
                        channel=channel,
                        outcome=option,
                    )
                return self._record(conn, gate_id)
        # Raised after the commit: a lazily applied expiry is kept, the vote is not.
        assert closed is not None
        raise closed

    def escalate(self, gate_id: str, level: int, *, now: datetime | None = None) -> bool:
        """Raise a pending gate's escalation level; ``True`` only for the call that raised it.

        Raises:
            GateNotFoundError: No gate has this id.
        """
        with S.write_tx(self._engine) as conn:
            row = self._row(conn, gate_id, lock=True)
            when = _now(now)
            if self._expire_locked(conn, row, when):
                return False
            if row.status != GateStatus.PENDING.value or row.escalation_level >= level:
                return False
            conn.execute(
                S.gates.update().where(S.gates.c.id == gate_id).values(escalation_level=level)
            )
            record_event(conn, gate_id, when, "escalated", level=level)
            return True

    def set_external(self, gate_id: str, **values: Any) -> GateRecord:
        """Merge orchestrator data (e.g. a Prefect flow run id) into the gate's ``external``.

        Raises:
            GateNotFoundError: No gate has this id.
        """
        with S.write_tx(self._engine) as conn:
            row = self._row(conn, gate_id, lock=True)
            merged = {**(row.external or {}), **values}
            conn.execute(S.gates.update().where(S.gates.c.id == gate_id).values(external=merged))
            return self._record(conn, gate_id)

    # -- items -------------------------------------------------------------------------------

    def items(self, gate_id: str) -> _list[GateItem]:
        """Return the gate's review items in their original order.

        Raises:
            GateNotFoundError: No gate has this id.
        """
        with S.read_tx(self._engine) as conn:
            self._row(conn, gate_id, lock=False)
            rows = conn.execute(
                sa.select(S.items).where(S.items.c.gate_id == gate_id).order_by(S.items.c.position)
            ).all()
        return [item_of(r) for r in rows]

    def correct_item(
        self,
        gate_id: str,
        item_id: str,
        *,
        label: Any,
        reviewer: str,
        channel: str,
        now: datetime | None = None,
    ) -> GateItem:
        """Record a reviewer's corrected label for one item while the gate is pending.

        Raises:
            GateNotFoundError: No such gate, or the gate has no item with this id.
            GateClosedError: The gate is resolved or expired.
            GateVoteRefusedError: The reviewer is not eligible on this gate.
        """
        with S.write_tx(self._engine) as conn:
            row, when, closed = self._lock_open(conn, gate_id, now)
            if closed is None:
                check_eligible(GatePolicy.model_validate(row.policy), row, reviewer)
                where = (S.items.c.gate_id == gate_id, S.items.c.item_id == str(item_id))
                done = conn.execute(
                    S.items.update()
                    .where(*where)
                    .values(label=label, corrected=True, corrected_by=reviewer, corrected_at=when)
                )
                if done.rowcount == 0:
                    raise GateNotFoundError(
                        f"gate {gate_id!r} has no review item with this id; use the ids shown "
                        "on the review page",
                        gate_id=gate_id,
                    )
                record_event(
                    conn,
                    gate_id,
                    when,
                    "corrected",
                    actor=reviewer,
                    channel=channel,
                    item_id=str(item_id),
                )
                return item_of(conn.execute(sa.select(S.items).where(*where)).one())
        assert closed is not None
        raise closed

    def corrections(self, gate_id: str) -> int:
        """Return how many of the gate's items a reviewer relabelled."""
        with S.read_tx(self._engine) as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(S.items)
                    .where(S.items.c.gate_id == gate_id, S.items.c.corrected.is_(True))
                ).scalar_one()
            )

    # -- notifications and tokens ------------------------------------------------------------

    def claim_notification(self, gate_id: str, key: str) -> bool:
        """Claim the right to send one notification; ``True`` exactly once per ``(gate, key)``.

        A claim marked failed by :meth:`finish_notification` can be claimed again (a retry).

        Raises:
            GateNotFoundError: No gate has this id.
        """
        when = _now(None)
        try:
            with S.write_tx(self._engine) as conn:
                self._row(conn, gate_id, lock=True)
                where = (S.notifications.c.gate_id == gate_id, S.notifications.c.key == key)
                row = conn.execute(sa.select(S.notifications).where(*where)).first()
                if row is None:
                    conn.execute(
                        S.notifications.insert().values(
                            gate_id=gate_id, key=key, status="claimed", attempts=1, updated_at=when
                        )
                    )
                    return True
                if row.status != "failed":
                    return False
                conn.execute(
                    S.notifications.update()
                    .where(*where)
                    .values(
                        status="claimed", attempts=row.attempts + 1, error=None, updated_at=when
                    )
                )
                return True
        except sa.exc.IntegrityError:
            return False  # another worker inserted the claim first

    def finish_notification(
        self, gate_id: str, key: str, *, ok: bool, error: str | None = None
    ) -> None:
        """Mark a claimed notification sent, or failed so it may be claimed again.

        Args:
            gate_id: The gate.
            key: The notification key given to :meth:`claim_notification`.
            ok: Whether it was delivered.
            error: A short safe description (no URLs, tokens or message text).
        """
        when = _now(None)
        with S.write_tx(self._engine) as conn:
            done = conn.execute(
                S.notifications.update()
                .where(S.notifications.c.gate_id == gate_id, S.notifications.c.key == key)
                .values(
                    status="sent" if ok else "failed",
                    error=None if ok else (error or "failed")[:500],
                    updated_at=when,
                )
            )
            if ok and done.rowcount:
                record_event(conn, gate_id, when, "notified", key=key)

    def notifications(self, gate_id: str) -> _list[dict[str, Any]]:
        """Return the gate's notification claims: key, status, attempts, error, updated_at."""
        with S.read_tx(self._engine) as conn:
            rows = conn.execute(
                sa.select(S.notifications)
                .where(S.notifications.c.gate_id == gate_id)
                .order_by(S.notifications.c.key)
            ).all()
        return [notification_of(r) for r in rows]

    def consume_token(
        self, nonce: str, *, gate_id: str, reviewer: str, now: datetime | None = None
    ) -> None:
        """Mark a signed link's nonce used; a second use is refused.

        Raises:
            GateTokenError: The nonce was already used (a replayed link).
        """
        try:
            with S.write_tx(self._engine) as conn:
                conn.execute(
                    S.used_tokens.insert().values(
                        nonce=nonce, gate_id=gate_id, reviewer=reviewer, used_at=_now(now)
                    )
                )
        except sa.exc.IntegrityError:
            raise GateTokenError(
                f"this decision link for gate {gate_id!r} was already used; ask for a new link "
                "or decide on the review page",
                gate_id=gate_id,
            ) from None

    # -- history and export ------------------------------------------------------------------

    def history(self, gate_id: str) -> _list[dict[str, Any]]:
        """Return the gate's events, oldest first: at, kind, actor, channel, detail.

        Kinds: opened, notified, voted, corrected, escalated, resolved, expired. Comments are
        never part of an event.

        Raises:
            GateNotFoundError: No gate has this id.
        """
        with S.read_tx(self._engine) as conn:
            self._row(conn, gate_id, lock=False)
            rows = conn.execute(
                sa.select(S.events).where(S.events.c.gate_id == gate_id).order_by(S.events.c.id)
            ).all()
        return [event_of(r) for r in rows]

    def decisions_dataset(
        self, *, gate_ids: Sequence[str] | None = None, pipeline: str | None = None
    ) -> _list[dict[str, Any]]:
        """Return decisions and corrections as rows, for retraining datasets.

        One row per item (``label`` is the corrected label, ``corrected`` says whether a
        reviewer changed it) plus one row per gate without items (``item_id`` None). Datetimes
        are tz-aware UTC; ``decided_by`` lists the reviewers whose vote matches the outcome.
        """
        query = sa.select(S.gates).order_by(S.gates.c.created_at, S.gates.c.id)
        if gate_ids is not None:
            query = query.where(S.gates.c.id.in_(_list(gate_ids)))
        if pipeline is not None:
            query = query.where(S.gates.c.pipeline == pipeline)
        with S.read_tx(self._engine) as conn:
            records = load_records(conn, conn.execute(query).all())
            item_rows = load_item_rows(conn, records)
        return dataset_rows(records, item_rows)

    def dispose(self) -> None:
        """Release this process's pooled connections to the store."""
        S.dispose_engine(self._url)
