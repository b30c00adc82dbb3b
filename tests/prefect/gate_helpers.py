"""Helpers of the gate task tests: run a flow on a thread, find its gate, resume it, read it back.

Every helper talks to real components: the session's Prefect server, the SQLite gate store of the
test, the webhook receiver the gate notifies. Waiting is always on a condition, with a deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

if TYPE_CHECKING:
    import pytest
    from prefect.states import State

    from guardflow.gates.models import GateRecord
    from guardflow.gates.store import GateStore
    from guardflow.gates.tokens import LinkSigner

T = TypeVar("T")

# Planted in the context and body of gates: it must reach no log, artifact, result or form.
PLANTED_EMAIL = "jane.planted.doe@example.com"
SUBJECT = "Deliver tonight's predictions?"
BODY = f"**120** rows scored; 7 under the confidence threshold. Owner: {PLANTED_EMAIL}"


def signer_with_env_key(monkeypatch: pytest.MonkeyPatch) -> LinkSigner:
    """A signer whose key is also where the task reads it (``GUARDFLOW_GATES_SIGNING_KEY``)."""
    from guardflow.gates.tokens import LinkSigner

    key = secrets.token_urlsafe(48)
    monkeypatch.setenv("GUARDFLOW_GATES_SIGNING_KEY", key)
    return LinkSigner(key)


def gate_policy(base_url: str, hook_url: str, **overrides: Any) -> dict[str, Any]:
    """A policy for ana and bo, polled fast, announced to the test's webhook receiver."""
    policy: dict[str, Any] = {
        "assignees": ["ana", "bo"],
        "base_url": base_url,
        "poll_interval_s": 0.2,
        "expires_after_s": 600,
        "notifiers": [{"kind": "webhook", "url": hook_url}],
    }
    policy.update(overrides)
    return policy


def wait_until(predicate: Callable[[], T | None], *, timeout: float = 90, what: str = "") -> T:
    """Return the first truthy value of ``predicate()``, polling until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'a condition'}")
        time.sleep(0.1)


@dataclass
class FlowThread:
    """A flow run started on a thread, as a worker would run it."""

    thread: threading.Thread
    box: dict[str, Any] = field(default_factory=dict)

    def state(self, timeout: float = 180) -> State[Any]:
        """Wait for the flow run to finish and return its final state."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow run did not finish"
        if "error" in self.box:
            raise self.box["error"]
        return self.box["state"]  # type: ignore[no-any-return]

    def result(self, timeout: float = 180) -> Any:
        """Wait for the flow run and return its result (raising its exception)."""
        # _sync: a thread running an event loop (Playwright's sync API) must not get a coroutine.
        return self.state(timeout).result(_sync=True)  # type: ignore[call-overload]


def start_flow(fn: Any, *args: Any, flow_run: Any = None, **kwargs: Any) -> FlowThread:
    """Start ``fn(*args, **kwargs, return_state=True)`` on a thread (async flows too).

    With ``flow_run``, run that existing flow run again instead, as a worker picking it up does.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            if flow_run is not None:
                from prefect.flow_engine import run_flow

                box["state"] = run_flow(fn, flow_run=flow_run, return_type="state")
            elif inspect.iscoroutinefunction(fn.fn):
                box["state"] = asyncio.run(fn(*args, return_state=True, **kwargs))
            else:
                box["state"] = fn(*args, return_state=True, **kwargs)
        except BaseException as exc:  # the test thread re-raises it
            box["error"] = exc

    thread = threading.Thread(target=target, name="flow-run", daemon=True)
    thread.start()
    return FlowThread(thread, box)


def pending_gate(store: GateStore, *, timeout: float = 90) -> GateRecord:
    """The one pending gate of the test's store, once the task has opened it."""
    from guardflow.gates.models import GateStatus

    return wait_until(
        lambda: next(iter(store.list(status=GateStatus.PENDING)), None),
        timeout=timeout,
        what="the gate to open",
    )


def flow_run_id_of(record: GateRecord) -> UUID:
    """The Prefect flow run a gate belongs to (the task stores it with the gate)."""
    return UUID(record.external["prefect_flow_run_id"])


def wait_paused(flow_run_id: UUID, gate_id: str, round_: int, *, timeout: float = 90) -> None:
    """Wait until the run is paused on wait ``round_`` of the gate, with its form saved."""
    key = f"guardflow-gate-{gate_id}-{round_}"

    def ready() -> bool:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
            if state is None or not state.is_paused() or state.state_details.pause_key != key:
                return False
            saved = client.filter_flow_run_input(
                flow_run_id=flow_run_id,
                key_prefix=f"paused-{key}-schema",
                limit=1,
                exclude_keys=set(),
            )
        return bool(saved)

    wait_until(ready, timeout=timeout, what=f"the flow run to pause on wait {round_}")


def resume_with(flow_run_id: UUID, run_input: dict[str, Any]) -> None:
    """Resume the paused flow run through Prefect's resume API, as a reviewer would."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(flow_run_id, run_input=run_input)


def flow_run_of(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def run_logs(flow_run_id: UUID) -> str:
    """Every log line of the flow run (and its task runs) as stored by the Prefect server."""
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return "\n".join(log.message for log in logs)


def run_artifacts(flow_run_id: UUID) -> list[Any]:
    """The artifacts the flow run created."""
    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        )


def keyed_artifact(key: str, flow_run_id: UUID) -> Any:
    """The artifact with ``key`` created by the flow run."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        )
    assert found, f"no artifact {key!r}"
    return found[0]


def run_inputs(flow_run_id: UUID, prefix: str = "paused-") -> list[str]:
    """The values the gate task saved as flow run inputs (form schemas, descriptions, answers)."""
    with get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(
            flow_run_id=flow_run_id, key_prefix=prefix, limit=200, exclude_keys=set()
        )
    return [f.value for f in found]
