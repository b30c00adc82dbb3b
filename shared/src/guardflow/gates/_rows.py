"""How gates, votes, items and events map to the gate store's rows, and back.

Inserts and reads inside a connection the caller holds (and has locked, for writes);
:class:`~guardflow.gates.store.GateStore` decides when. Nothing here reads the clock or commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from guardflow.gates import _schema as S
from guardflow.gates.models import Decision, GateItem, GatePolicy, GateRecord, GateStatus

__all__ = [
    "dataset_rows",
    "event_of",
    "insert_gate",
    "item_of",
    "load_item_rows",
    "load_records",
    "notification_of",
    "record_event",
]


def record_event(
    conn: Connection,
    gate_id: str,
    at: datetime,
    kind: str,
    *,
    actor: str | None = None,
    channel: str | None = None,
    **detail: Any,
) -> None:
    """Append an event to the gate's history (``detail`` never holds comments)."""
    conn.execute(
        S.events.insert().values(
            gate_id=gate_id, at=at, kind=kind, actor=actor, channel=channel, detail=detail or None
        )
    )


def item_of(row: Row[Any]) -> GateItem:
    """Return an item row as a :class:`GateItem`."""
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


def event_of(row: Row[Any]) -> dict[str, Any]:
    """Return an event row as a history entry: at, kind, actor, channel, detail."""
    return {
        "at": row.at,
        "kind": row.kind,
        "actor": row.actor,
        "channel": row.channel,
        "detail": row.detail or {},
    }


def notification_of(row: Row[Any]) -> dict[str, Any]:
    """Return a notification claim row as key, status, attempts, error, updated_at."""
    return {
        "key": row.key,
        "status": row.status,
        "attempts": row.attempts,
        "error": row.error,
        "updated_at": row.updated_at,
    }


def load_records(conn: Connection, rows: Sequence[Row[Any]]) -> list[GateRecord]:
    """Return gate rows as records, each with its votes in recording order."""
    ids = [r.id for r in rows]
    by_gate: dict[str, list[Decision]] = {i: [] for i in ids}
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


def insert_gate(
    conn: Connection, record: GateRecord, items: Sequence[GateItem], *, created: datetime
) -> None:
    """Insert a new gate with its items and votes, and its ``opened`` (and closing) events.

    ``created`` is the creation time to record (the store reads the clock).
    """
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
    record_event(conn, record.id, created, "opened", channel=record.orchestrator)
    if record.status is not GateStatus.PENDING:
        kind = "resolved" if record.status is GateStatus.RESOLVED else "expired"
        at = record.resolved_at or created
        record_event(
            conn, record.id, at, kind, channel=record.resolution_channel, outcome=record.outcome
        )


def load_item_rows(conn: Connection, records: Sequence[GateRecord]) -> dict[str, list[Row[Any]]]:
    """Return the item rows of each gate, gate id to rows in review order."""
    item_rows: dict[str, list[Row[Any]]] = {r.id: [] for r in records}
    ids = list(item_rows)
    for start in range(0, len(ids), 500):
        for row in conn.execute(
            sa.select(S.items)
            .where(S.items.c.gate_id.in_(ids[start : start + 500]))
            .order_by(S.items.c.gate_id, S.items.c.position)
        ):
            item_rows[row.gate_id].append(row)
    return item_rows


def dataset_rows(
    records: Sequence[GateRecord], item_rows: dict[str, list[Row[Any]]]
) -> list[dict[str, Any]]:
    """Return the decisions-dataset rows of gates and their item rows (gate id to rows, in order).

    See :meth:`~guardflow.gates.store.GateStore.decisions_dataset` for the columns.
    """
    out: list[dict[str, Any]] = []
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
