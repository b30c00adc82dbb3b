"""The resume form of a waiting gate and the markdown around it (no context values, ever).

The form (:class:`GateDecisionInput`) is what Prefect's UI shows on a paused flow run; its
description is the gate's masked subject and body, the review page link, the options and the
votes so far. The summary is the outcome artifact: counts and the deciding channel only.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from prefect.input import RunInput
from pydantic import Field, create_model

if TYPE_CHECKING:
    from guardflow.gates.models import GateOutcome, GateRecord

__all__ = [
    "GateDecisionInput",
    "decision_input_for",
    "describe_gate",
    "pause_key",
    "pause_timeout",
    "summary_markdown",
]

# Prefect fails a paused run whose pause timeout passed; the watcher resumes the run when the
# store expires the gate, so the pause outlives the gate's expiry by a margin.
_MARGIN_S = 300.0
_NO_EXPIRY_S = 365 * 86_400


class GateDecisionInput(RunInput):
    """The resume form of a paused gate: who decides, what, and an optional comment.

    Shown by the Prefect UI when the flow run waits on a gate (the options become a drop-down);
    the same fields are what ``prefect.flow_runs.resume_flow_run(id, run_input={...})`` takes.
    The task records the input as a vote (channel ``prefect``) in the gate store; the gate resolves
    only when the store's quorum is met, so one form may not be enough.

    Args:
        reviewer: The reviewer's user name as the gate's policy knows it (an assignee).
        option: The chosen option.
        comment: Kept with the vote in the gate store; never logged.
        from_store: Set by guardflow itself when it resumes the run because the store changed;
            a human leaves it unset (setting it only makes the task look at the store again).

    Examples:
        ```python
        from prefect.flow_runs import resume_flow_run

        resume_flow_run(flow_run_id, run_input={"reviewer": "ana", "option": "approve"})
        ```
    """

    reviewer: str = Field(default="", description="Your user name (an assignee of the gate).")
    option: str = Field(description="Your decision.")
    comment: str | None = Field(
        default=None, description="Optional; kept with your vote in the gate store."
    )
    from_store: bool = Field(
        default=False, description="Set by guardflow when the gate store resumed the run."
    )


def decision_input_for(record: GateRecord, description: str) -> type[GateDecisionInput]:
    """Return the resume form of one gate: its options as choices, its description on top.

    Args:
        record: The gate.
        description: Markdown shown above the form.

    Returns:
        A :class:`GateDecisionInput` subclass.
    """
    choices: Any = Literal.__getitem__(tuple(record.policy.options))
    model = create_model(
        "GateDecisionInput",
        __base__=GateDecisionInput,
        option=(choices, Field(description="Your decision.")),
    )
    return model.with_initial_data(description=description)


def pause_key(gate_id: str, round_: int) -> str:
    """Return the pause key of one wait on a gate; each round gets its own.

    Prefect refuses a pause key it has seen in the flow run (it returns the earlier input), so a
    new round (after a vote that did not resolve the gate) needs a new key, and a restarted task
    walks past the keys of rounds that already fired.
    """
    return f"guardflow-gate-{gate_id}-{round_}"


def pause_timeout(record: GateRecord, *, now: datetime | None = None) -> int:
    """Return the pause timeout in seconds: past the gate's expiry, or a year without one."""
    if record.expires_at is None:
        return _NO_EXPIRY_S
    now = now or datetime.now(timezone.utc)
    left = (record.expires_at - now).total_seconds()
    return max(1, math.ceil(max(left, 0.0) + _MARGIN_S))


def describe_gate(record: GateRecord, page_url: str, round_: int) -> str:
    """Return the markdown shown above the resume form (masked subject and body, no context).

    Args:
        record: The gate as stored (subject and body already masked by the service).
        page_url: The gate's review page.
        round_: Which wait on this gate this is (1 for the first).

    Returns:
        Markdown text.
    """
    policy = record.policy
    tally = record.tally()
    quorum = ", ".join(f"`{o}` {tally.get(o, 0)} of {policy.quorum(o)}" for o in policy.options)
    expiry = (
        f"{record.expires_at.isoformat(timespec='seconds')} (then: {policy.on_timeout.value})"
        if record.expires_at
        else "never"
    )
    lines = [
        f"## Approval needed: {record.subject}",
        "",
        record.body or "",
        "",
        f"- Review page: [{page_url}]({page_url})",
        f"- Options: {', '.join(f'`{o}`' for o in policy.options)}",
        f"- Votes so far (of the quorum): {quorum}",
        f"- Expires: {expiry}",
        f"- Gate: `{record.id}` (wait {round_})",
        "",
        "Enter your user name and your decision. It is recorded as your vote in the gate store; "
        "the flow goes on when the store's quorum is met (it may pause again for more votes). "
        "Decisions by link, on the review page or with `guardflow gates` resume it too.",
    ]
    return "\n".join(lines)


def summary_markdown(outcome: GateOutcome) -> str:
    """Return the outcome artifact: status, option, counts and channel (no names, no data)."""
    votes = ", ".join(f"{o}: {n}" for o, n in sorted(outcome.votes.items())) or "none"
    rows = [
        ("Gate", f"`{outcome.gate_id}`"),
        ("Status", outcome.status.value),
        ("Outcome", outcome.outcome or "none (expired)"),
        ("Approved", "yes" if outcome.approved else "no"),
        ("Votes", votes),
        ("Deciding reviewers", len(outcome.decided_by)),
        ("Channel", outcome.channel or ""),
        ("Timed out", "yes" if outcome.timed_out else "no"),
        ("Items reviewed / passed", f"{outcome.items_reviewed} / {outcome.items_passed}"),
        ("Corrections", outcome.corrections),
        ("Resolved at", outcome.resolved_at or ""),
    ]
    body = ["### guardflow approval gate", "", "| | |", "|---|---|"]
    body += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(body) + "\n"
