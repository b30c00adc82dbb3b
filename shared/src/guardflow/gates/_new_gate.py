"""What a new gate is stored as: the record and items built from what ``Gate.open`` receives.

Subject, body, context and items are masked with :mod:`guardflow.pii` first; items are routed by
``policy.routing`` when set (a gate whose items all pass is created resolved, channel ``routing``).
Used by :meth:`guardflow.gates.service.Gate.open` only when the gate does not exist yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from guardflow.gates._masking import mask_string, mask_value
from guardflow.gates.models import GateItem, GatePolicy, GateRecord, GateStatus, RoutingRule
from guardflow.gates.routing import item_id, item_score, lookup, route_items
from guardflow.identity import RunIdentity

__all__ = ["build_gate", "safe_item_id"]


def safe_item_id(ident: str) -> str:
    """Return ``ident``, or ``h:<sha256 prefix>`` of it when it holds PII."""
    # An id that is itself PII (an e-mail address...) is stored as a stable hash: masking it
    # would make distinct items share one id, while the hash still joins back to the source.
    if mask_string(ident) == ident:
        return ident
    return "h:" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:24]


def build_gate(
    policy: GatePolicy,
    gate_id: str,
    identity: RunIdentity,
    subject: str,
    body: str,
    context: Mapping[str, Any] | None,
    items: Sequence[Mapping[str, Any]] | None,
    external: Mapping[str, Any] | None,
    now: datetime,
) -> tuple[GateRecord, list[GateItem]]:
    """Return the masked, routed record and review items of a gate ``Gate.open`` creates.

    Arguments are those of :meth:`~guardflow.gates.service.Gate.open`, with ``items`` already
    loaded and ``now`` the creation time; ``policy`` is the policy the gate is opened with.
    """
    rule = policy.routing or RoutingRule()
    if policy.routing is not None and items:
        to_review, passed = route_items(items, rule)
    else:
        to_review = [(item_id(dict(i), rule, n), dict(i)) for n, i in enumerate(items or ())]
        passed = []
    gate_items = []
    for ident, raw in to_review:
        data = mask_value(raw)
        gate_items.append(
            GateItem(
                gate_id=gate_id,
                item_id=safe_item_id(ident),
                data=data,
                prediction=lookup(data, rule.label_field),
                score=item_score(raw, rule),
            )
        )
    expires = now + timedelta(seconds=policy.expires_after_s) if policy.expires_after_s else None
    record = GateRecord(
        id=gate_id,
        subject=mask_string(subject),
        body=mask_string(body),
        context=mask_value(dict(context or {})),
        policy=policy,
        orchestrator=identity.orchestrator,
        pipeline=identity.pipeline,
        run_id=identity.run_id,
        task_id=identity.task_id,
        map_index=identity.map_index,
        created_at=now,
        expires_at=expires,
        external=dict(external or {}),
        item_count=len(gate_items),
        passed_count=len(passed),
    )
    if policy.routing is not None and items and not gate_items:
        approve = [o for o in policy.options if o not in policy.reject_options]
        record = record.model_copy(
            update={
                "status": GateStatus.RESOLVED,
                "outcome": (approve or policy.options)[0],
                "resolved_at": now,
                "resolution_channel": "routing",
            }
        )
    return record, gate_items
