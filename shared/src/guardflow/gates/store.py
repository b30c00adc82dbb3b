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

from guardflow.errors import (
    GateClosedError,
    GateNotFoundError,
    GateTokenError,
    GateVoteRefusedError,
)
from guardflow.gates import _schema as S
from guardflow.gates.models import (
    Decision,
    GateItem,
    GatePolicy,
    GateRecord,
    GateStatus,
    TimeoutAction,
)

__all__ = ["GateStore"]

_list = builtins.list  # the class defines a method named ``list``


def _now(now: datetime | None) -> datetime:
    value = S.utc(now)
    return value if value is not None else datetime.now(timezone.utc)


def _not_found(gate_id: str) -> GateNotFoundError:
    return GateNotFoundError(
        f"no gate {gate_id!r} in this store; check the id (`guardflow gates list`) and that "
        "the same store URL ($GUARDFLOW_GATES_DB) is used everywhere",
        gate_id=gate_id,
    )


def _closed(gate_id: str, status: str) -> GateClosedError:
    return GateClosedError(
        f"gate {gate_id!r} is already {status}; the decision was not recorded "
        f"(see `guardflow gates show {gate_id}`)",
        gate_id=gate_id,
    )


def _event(
    conn: Connection,
    gate_id: str,
    at: datetime,
    kind: str,
    *,
    actor: str | None = None,
    channel: str | None = None,
    **detail: Any,
) -> None:
    conn.execute(
        S.events.insert().values(
            gate_id=gate_id, at=at, kind=kind, actor=actor, channel=channel, detail=detail or None
        )
    )


def _timeout_result(policy: GatePolicy) -> tuple[GateStatus, str | None]:
    if policy.on_timeout is TimeoutAction.APPROVE:
        choice = next((o for o in policy.options if o not in policy.reject_options), None)
    elif policy.on_timeout is TimeoutAction.REJECT:
        choice = policy.reject_options[0] if policy.reject_options else None
    else:
        choice = None
    return (GateStatus.RESOLVED, choice) if choice is not None else (GateStatus.EXPIRED, None)


def _due(row: Row[Any], now: datetime) -> bool:
    expires = row.expires_at
    return row.status == GateStatus.PENDING.value and expires is not None and expires <= now


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
            raise _not_found(gate_id)
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
            return row, when, _closed(gate_id, row.status)
        return row, when, None

    def _records(self, conn: Connection, rows: Sequence[Row[Any]]) -> _list[GateRecord]:
        ids = [r.id for r in rows]
        by_gate: dict[str, _list[Decision]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = (
                sa.select(S.votes)
                .where(S.votes.c.gate_id.in_(chunk))
                .order_by(S.votes.c.id)  # recording order
            )
            for v in conn.execute(query):
                by_gate[v.gate_id].append(
                    Decision(
                        gate_id=v.gate_id,
                        reviewer=v.reviewer,
                        option=v.option,
                        channel=v.channel,
                        comment=v.comment,
                        decided_at=v.decided_at,
                    )
                )
        return [
            GateRecord(
                id=r.id,
                subject=r.subject,
                body=r.body,
                context=r.context,
                policy=GatePolicy.model_validate(r.policy),
                status=GateStatus(r.status),
                outcome=r.outcome,
                orchestrator=r.orchestrator,
                pipeline=r.pipeline,
                run_id=r.run_id,
                task_id=r.task_id,
                map_index=r.map_index,
                created_at=r.created_at,
                expires_at=r.expires_at,
                resolved_at=r.resolved_at,
                resolution_channel=r.resolution_channel,
                escalation_level=r.escalation_level,
                external=r.external,
                votes=by_gate[r.id],
                item_count=r.item_count,
                passed_count=r.passed_count,
            )
            for r in rows
        ]

    def _record(self, conn: Connection, gate_id: str) -> GateRecord:
        return self._records(conn, [self._row(conn, gate_id, lock=False)])[0]

    def _expire_locked(self, conn: Connection, row: Row[Any], now: datetime) -> bool:
        """Apply the on-timeout action to a locked, due gate; return whether it changed."""
        if not _due(row, now):
            return False
        status, outcome = _timeout_result(GatePolicy.model_validate(row.policy))
        at = row.expires_at
        conn.execute(
            S.gates.update()
            .where(S.gates.c.id == row.id, S.gates.c.status == GateStatus.PENDING.value)
            .values(
                status=status.value, outcome=outcome, resolved_at=at, resolution_channel="timeout"
            )
        )
        kind = "resolved" if status is GateStatus.RESOLVED else "expired"
        _event(conn, row.id, at, kind, channel="timeout", outcome=outcome)
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
                    self._insert(conn, record, items)
                    return self._record(conn, record.id), True
        except sa.exc.IntegrityError:
            pass  # PostgreSQL: another worker inserted the same id between our SELECT and INSERT
        return self.get(record.id), False

    def _insert(self, conn: Connection, record: GateRecord, items: Sequence[GateItem]) -> None:
        created = _now(record.created_at)
        conn.execute(
            S.gates.insert().values(
                id=record.id,
                subject=record.subject,
                body=record.body,
                context=record.context,
                policy=record.policy.public_dict(),
                status=record.status.value,
                outcome=record.outcome,
                orchestrator=record.orchestrator,
                pipeline=record.pipeline,
                run_id=record.run_id,
                task_id=record.task_id,
                map_index=record.map_index,
                created_at=created,
                expires_at=record.expires_at,
                resolved_at=record.resolved_at,
                resolution_channel=record.resolution_channel,
                escalation_level=record.escalation_level,
                external=record.external,
                item_count=len(items) if items else record.item_count,
                passed_count=record.passed_count,
            )
        )
        if items:
            conn.execute(
                S.items.insert(),
                [
                    {
                        "gate_id": record.id,
                        "item_id": str(item.item_id),
                        "position": pos,
                        "data": item.data,
                        "prediction": item.prediction,
                        "score": item.score,
                        "label": item.label,
                        "corrected": item.corrected_by is not None,
                        "corrected_by": item.corrected_by,
                        "corrected_at": item.corrected_at,
                    }
                    for pos, item in enumerate(items)
                ],
            )
        for vote in record.votes:
            conn.execute(
                S.votes.insert().values(
                    gate_id=record.id,
                    reviewer=vote.reviewer,
                    option=vote.option,
                    channel=vote.channel,
                    comment=vote.comment,
                    decided_at=vote.decided_at,
                )
            )
        _event(conn, record.id, created, "opened", channel=record.orchestrator)
        if record.status is not GateStatus.PENDING:
            kind = "resolved" if record.status is GateStatus.RESOLVED else "expired"
            at = record.resolved_at or created
            _event(
                conn, record.id, at, kind, channel=record.resolution_channel, outcome=record.outcome
            )

    def get(self, gate_id: str, *, now: datetime | None = None) -> GateRecord:
        """Return a gate, after applying its on-timeout action if it is past ``expires_at``.

        Raises:
            GateNotFoundError: No gate has this id.
        """
        when = _now(now)
        with S.read_tx(self._engine) as conn:
            row = self._row(conn, gate_id, lock=False)
            if not _due(row, when):
                return self._records(conn, [row])[0]
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
            return self._records(conn, rows)

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
            records = self._records(conn, conn.execute(query).all())
        if reviewer is not None:
            records = [r for r in records if _may_vote(r, reviewer)][:limit]
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
                _check_vote(conn, row, policy, reviewer, option)
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
                _event(conn, gate_id, when, "voted", actor=reviewer, channel=channel, option=option)
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
                    _event(
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
            _event(conn, gate_id, when, "escalated", level=level)
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
        return [_item(r) for r in rows]

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
                _check_eligible(GatePolicy.model_validate(row.policy), row, reviewer)
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
                _event(
                    conn,
                    gate_id,
                    when,
                    "corrected",
                    actor=reviewer,
                    channel=channel,
                    item_id=str(item_id),
                )
                return _item(conn.execute(sa.select(S.items).where(*where)).one())
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
                _event(conn, gate_id, when, "notified", key=key)

    def notifications(self, gate_id: str) -> _list[dict[str, Any]]:
        """Return the gate's notification claims: key, status, attempts, error, updated_at."""
        with S.read_tx(self._engine) as conn:
            rows = conn.execute(
                sa.select(S.notifications)
                .where(S.notifications.c.gate_id == gate_id)
                .order_by(S.notifications.c.key)
            ).all()
        return [
            {
                "key": r.key,
                "status": r.status,
                "attempts": r.attempts,
                "error": r.error,
                "updated_at": r.updated_at,
            }
            for r in rows
        ]

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
        return [
            {
                "at": r.at,
                "kind": r.kind,
                "actor": r.actor,
                "channel": r.channel,
                "detail": r.detail or {},
            }
            for r in rows
        ]

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
            records = self._records(conn, conn.execute(query).all())
            item_rows: dict[str, _list[Row[Any]]] = {r.id: [] for r in records}
            ids = _list(item_rows)
            for start in range(0, len(ids), 500):
                for row in conn.execute(
                    sa.select(S.items)
                    .where(S.items.c.gate_id.in_(ids[start : start + 500]))
                    .order_by(S.items.c.gate_id, S.items.c.position)
                ):
                    item_rows[row.gate_id].append(row)
        out: _list[dict[str, Any]] = []
        for rec in records:
            base = {
                "gate_id": rec.id,
                "pipeline": rec.pipeline,
                "run_id": rec.run_id,
                "task_id": rec.task_id,
                "status": rec.status.value,
                "outcome": rec.outcome,
                "decided_by": [
                    v.reviewer for v in rec.votes if rec.outcome and v.option == rec.outcome
                ],
                "resolved_at": rec.resolved_at,
                "channel": rec.resolution_channel,
            }
            empty = {
                "item_id": None,
                "prediction": None,
                "score": None,
                "label": None,
                "corrected": False,
                "corrected_by": None,
                "corrected_at": None,
            }
            rows = item_rows[rec.id]
            if not rows:
                out.append({**base, **empty})
            for r in rows:
                out.append(
                    {
                        **base,
                        "item_id": r.item_id,
                        "prediction": r.prediction,
                        "score": r.score,
                        "label": r.label,
                        "corrected": bool(r.corrected),
                        "corrected_by": r.corrected_by,
                        "corrected_at": r.corrected_at,
                    }
                )
        return out

    def dispose(self) -> None:
        """Release this process's pooled connections to the store."""
        S.dispose_engine(self._url)


# -- vote checks ---------------------------------------------------------------------------------


def _check_eligible(policy: GatePolicy, row: Row[Any], reviewer: str) -> None:
    eligible = policy.eligible_reviewers(row.escalation_level)
    if eligible is not None and reviewer not in eligible:
        raise GateVoteRefusedError(
            f"reviewer {reviewer!r} is not an assignee of gate {row.id!r} at its current "
            "escalation level; ask an assignee to decide or add the reviewer to the policy",
            gate_id=row.id,
        )


def _check_vote(
    conn: Connection, row: Row[Any], policy: GatePolicy, reviewer: str, option: str
) -> None:
    if option not in policy.options:
        raise GateVoteRefusedError(
            f"option {option!r} is not one of gate {row.id!r}'s options "
            f"({', '.join(policy.options)}); choose one of them",
            gate_id=row.id,
        )
    _check_eligible(policy, row, reviewer)
    voted = conn.execute(
        sa.select(S.votes.c.id).where(S.votes.c.gate_id == row.id, S.votes.c.reviewer == reviewer)
    ).first()
    if voted is not None:
        raise GateVoteRefusedError(
            f"reviewer {reviewer!r} already voted on gate {row.id!r}; each reviewer votes once",
            gate_id=row.id,
        )


def _may_vote(record: GateRecord, reviewer: str) -> bool:
    eligible = record.policy.eligible_reviewers(record.escalation_level)
    if eligible is not None and reviewer not in eligible:
        return False
    return all(v.reviewer != reviewer for v in record.votes)


def _item(row: Row[Any]) -> GateItem:
    return GateItem(
        gate_id=row.gate_id,
        item_id=row.item_id,
        data=row.data or {},
        prediction=row.prediction,
        score=row.score,
        label=row.label,
        corrected_by=row.corrected_by,
        corrected_at=row.corrected_at,
    )
