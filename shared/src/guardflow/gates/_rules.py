"""The rules the gate store applies under its lock: who may vote, what a timeout resolves to.

Pure functions of a gate's policy and row (one reads the votes already cast), plus the errors a
refused decision raises. :class:`~guardflow.gates.store.GateStore` calls them inside its
transactions; they never commit or lock anything themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from guardflow.errors import GateClosedError, GateNotFoundError, GateVoteRefusedError
from guardflow.gates import _schema as S
from guardflow.gates.models import GatePolicy, GateRecord, GateStatus, TimeoutAction

__all__ = [
    "check_eligible",
    "check_vote",
    "closed_error",
    "is_due",
    "may_vote",
    "not_found_error",
    "timeout_result",
]


def not_found_error(gate_id: str) -> GateNotFoundError:
    """Return the error for an id no gate has."""
    return GateNotFoundError(
        f"no gate {gate_id!r} in this store; check the id (`guardflow gates list`) and that "
        "the same store URL ($GUARDFLOW_GATES_DB) is used everywhere",
        gate_id=gate_id,
    )


def closed_error(gate_id: str, status: str) -> GateClosedError:
    """Return the error for a decision on a gate that is already resolved or expired."""
    return GateClosedError(
        f"gate {gate_id!r} is already {status}; the decision was not recorded "
        f"(see `guardflow gates show {gate_id}`)",
        gate_id=gate_id,
    )


def timeout_result(policy: GatePolicy) -> tuple[GateStatus, str | None]:
    """Return the status and outcome ``policy.on_timeout`` gives a gate that expires."""
    if policy.on_timeout is TimeoutAction.APPROVE:
        choice = next((o for o in policy.options if o not in policy.reject_options), None)
    elif policy.on_timeout is TimeoutAction.REJECT:
        choice = policy.reject_options[0] if policy.reject_options else None
    else:
        choice = None
    return (GateStatus.RESOLVED, choice) if choice is not None else (GateStatus.EXPIRED, None)


def is_due(row: Row[Any], now: datetime) -> bool:
    """Whether a gate row is pending past its expiry at ``now``."""
    expires = row.expires_at
    return row.status == GateStatus.PENDING.value and expires is not None and expires <= now


def check_eligible(policy: GatePolicy, row: Row[Any], reviewer: str) -> None:
    """Refuse a reviewer who is not eligible at the gate's escalation level."""
    eligible = policy.eligible_reviewers(row.escalation_level)
    if eligible is not None and reviewer not in eligible:
        raise GateVoteRefusedError(
            f"reviewer {reviewer!r} is not an assignee of gate {row.id!r} at its current "
            "escalation level; ask an assignee to decide or add the reviewer to the policy",
            gate_id=row.id,
        )


def check_vote(
    conn: Connection, row: Row[Any], policy: GatePolicy, reviewer: str, option: str
) -> None:
    """Refuse an unknown option, an ineligible reviewer or a second vote."""
    if option not in policy.options:
        raise GateVoteRefusedError(
            f"option {option!r} is not one of gate {row.id!r}'s options "
            f"({', '.join(policy.options)}); choose one of them",
            gate_id=row.id,
        )
    check_eligible(policy, row, reviewer)
    voted = conn.execute(
        sa.select(S.votes.c.id).where(S.votes.c.gate_id == row.id, S.votes.c.reviewer == reviewer)
    ).first()
    if voted is not None:
        raise GateVoteRefusedError(
            f"reviewer {reviewer!r} already voted on gate {row.id!r}; each reviewer votes once",
            gate_id=row.id,
        )


def may_vote(record: GateRecord, reviewer: str) -> bool:
    """Whether ``reviewer`` is eligible on the gate and has not voted yet."""
    eligible = record.policy.eligible_reviewers(record.escalation_level)
    if eligible is not None and reviewer not in eligible:
        return False
    return all(v.reviewer != reviewer for v in record.votes)
