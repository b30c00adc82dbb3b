"""How the gate tasks wait: pause, record resume-form votes, and resume when the store decides.

A paused flow run can be resumed two ways and both end up here. A human fills the resume form in
the Prefect UI (or calls the resume API): the task records that input as a vote. Or a reviewer
decides elsewhere (signed link, review page, CLI) or the gate expires: the store changes, and the
:class:`StoreWatcher` thread, which polls the store, resumes the run through Prefect's resume API
with an input marked ``from_store``. Either way the task then reads the store, which alone says
whether the gate is decided; while it is pending the task pauses again under a new key.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect import get_run_logger
from pydantic import ValidationError

from guardflow.errors import GateClosedError, GateTimeoutError, GateVoteRefusedError
from prefect_guardflow._gate_form import (
    GateDecisionInput,
    decision_input_for,
    describe_gate,
    pause_key,
    pause_timeout,
)

if TYPE_CHECKING:
    from guardflow.gates.models import GateRecord
    from guardflow.gates.service import Gate

__all__ = ["StoreWatcher", "await_gate", "record_vote", "wait"]

_logger = logging.getLogger("prefect.guardflow.gates")


class StoreWatcher:
    """Resume a paused flow run when the gate store says the gate is no longer pending.

    Runs in a daemon thread beside the paused task (the task's thread is inside Prefect's pause
    loop). Every ``interval`` seconds it polls the gate (which also applies expiry and fires due
    escalations); once the gate is resolved or expired it resumes the flow run with a
    ``from_store`` input, retrying while the run is not (yet) paused, until :meth:`stop`.

    Args:
        gate: The gate service.
        gate_id: The gate.
        flow_run_id: The flow run to resume.
        interval: Seconds between polls.
    """

    def __init__(self, gate: Gate, gate_id: str, flow_run_id: UUID, interval: float) -> None:
        self.gate = gate
        self.gate_id = gate_id
        self.flow_run_id = flow_run_id
        self.interval = interval
        self.resumes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling in a daemon thread that sees the task's Prefect settings."""
        run = contextvars.copy_context().run
        self._thread = threading.Thread(
            target=run, args=(self._loop,), name=f"guardflow-gate-{self.gate_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                record = self.gate.poll(self.gate_id)
            except Exception as exc:  # the next poll tries again; the store may be busy
                _logger.debug("gate %s: poll failed (%s)", self.gate_id, type(exc).__name__)
                continue
            if not record.is_open:
                self._resume(record.policy.options[0])

    def _resume(self, any_option: str) -> None:
        from prefect.flow_runs import resume_flow_run

        try:
            # The form needs a valid option; from_store tells the task to ignore it.
            resume_flow_run(
                self.flow_run_id,
                run_input={"option": any_option, "from_store": True},
                _sync=True,  # type: ignore[call-arg]
            )
        except Exception as exc:  # not paused yet, or already resumed: try again next poll
            _logger.debug("gate %s: resume not possible yet (%s)", self.gate_id, type(exc).__name__)
            return
        self.resumes += 1


def _pause_args(gate: Gate, record: GateRecord, round_: int) -> dict[str, Any]:
    from guardflow.gates.tokens import gate_page_url

    page_url = gate_page_url(gate.policy.base_url, record.id)
    get_run_logger().info(
        "Waiting on gate %s (wait %d): decide at %s, with `guardflow gates approve|reject %s`, "
        "by your signed link, or in this flow run's resume form",
        record.id,
        round_,
        page_url,
        record.id,
    )
    return {
        "wait_for_input": decision_input_for(record, describe_gate(record, page_url, round_)),
        "timeout": pause_timeout(record),
        "poll_interval": max(1, math.ceil(gate.policy.poll_interval_s)),
        "key": pause_key(record.id, round_),
    }


def record_vote(gate: Gate, gate_id: str, value: GateDecisionInput | None) -> None:
    """Record resume-form input as a vote (channel ``prefect``); refusals are logged, not raised.

    Input marked ``from_store`` (the watcher's) or missing is no vote. The store's rules apply:
    eligibility, one vote per reviewer, valid options, closed gates.

    Args:
        gate: The gate service.
        gate_id: The gate.
        value: What the form or the resume API sent.
    """
    if value is None or value.from_store:
        return
    try:
        _decide(gate, gate_id, value)
    finally:
        _forget(value)


def _decide(gate: Gate, gate_id: str, value: GateDecisionInput) -> None:
    logger = get_run_logger()
    if not value.reviewer.strip():
        logger.warning("The vote from the Prefect resume form was refused: no reviewer name given")
        return
    try:
        gate.decide(
            gate_id,
            reviewer=value.reviewer,
            option=value.option,
            channel="prefect",
            comment=value.comment,
        )
    except GateVoteRefusedError as exc:
        # The form's fields are free text: name the rule, never echo what was typed.
        logger.warning("The vote from the Prefect resume form was refused: %s", _reason(exc))
    except GateClosedError:
        logger.info("Gate %s was already decided; the resume-form vote was not needed", gate_id)
    else:
        logger.info("Vote from the Prefect resume form recorded on gate %s", gate_id)


def _forget(value: GateDecisionInput) -> None:
    """Delete the form's answer from Prefect: the store keeps the vote, its comment is free text."""
    from prefect.input.actions import delete_flow_run_input

    try:
        delete_flow_run_input(
            value.metadata.key,
            value.metadata.receiver,
            _sync=True,  # type: ignore[call-arg]
        )
    except Exception as exc:  # best effort: the answer stays with the flow run's inputs
        _logger.debug("resume-form answer not deleted (%s)", type(exc).__name__)


def _reason(exc: GateVoteRefusedError) -> str:
    text = str(exc)
    for marker, reason in (
        ("not an assignee", "the reviewer is not an assignee at the gate's escalation level"),
        ("already voted", "the reviewer already voted on this gate"),
        ("not one of", "the option is not one of the gate's options"),
    ):
        if marker in text:
            return reason
    return "the gate store's rules refuse it"


def _paused_out(gate_id: str) -> GateTimeoutError:
    return GateTimeoutError(
        f"the flow run's pause ended before the gate store decided gate {gate_id}; "
        "check that the store is reachable from this worker",
        gate_id=gate_id,
    )


def wait(gate: Gate, record: GateRecord, flow_run_id: UUID) -> GateRecord:
    """Pause the flow run (in the task's thread) until the store closes the gate.

    Args:
        gate: The gate service.
        record: The gate as opened; returned at once when it is not pending.
        flow_run_id: The flow run to pause and resume.

    Returns:
        The gate, resolved or expired.

    Raises:
        GateTimeoutError: Prefect's pause timed out first (the store was unreachable).
    """
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    if not record.is_open:
        return record
    watcher = StoreWatcher(gate, record.id, flow_run_id, gate.policy.poll_interval_s)
    watcher.start()
    try:
        round_ = 1
        while True:
            record = gate.poll(record.id)
            if not record.is_open:
                return record
            try:
                value = pause_flow_run(**_pause_args(gate, record, round_))
            except FlowPauseTimeout:
                raise _paused_out(record.id) from None
            except ValidationError:  # a fired key without a valid stored input
                value = None
            round_ += 1
            record_vote(gate, record.id, value)
    finally:
        watcher.stop()


async def await_gate(gate: Gate, record: GateRecord, flow_run_id: UUID) -> GateRecord:
    """Async twin of :func:`wait`: Prefect's async pause, store calls in worker threads.

    Args:
        gate: The gate service.
        record: The gate as opened.
        flow_run_id: The flow run to pause and resume.

    Returns:
        The gate, resolved or expired.

    Raises:
        GateTimeoutError: Prefect's pause timed out first.
    """
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import apause_flow_run

    if not record.is_open:
        return record
    watcher = StoreWatcher(gate, record.id, flow_run_id, gate.policy.poll_interval_s)
    watcher.start()
    try:
        round_ = 1
        while True:
            record = await asyncio.to_thread(gate.poll, record.id)
            if not record.is_open:
                return record
            try:
                value = await apause_flow_run(**_pause_args(gate, record, round_))
            except FlowPauseTimeout:
                raise _paused_out(record.id) from None
            except ValidationError:
                value = None
            round_ += 1
            await asyncio.to_thread(record_vote, gate, record.id, value)
    finally:
        await asyncio.to_thread(watcher.stop)
