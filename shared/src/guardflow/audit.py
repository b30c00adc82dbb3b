"""Audit trail: one event for every step guardflow runs.

An :class:`AuditEvent` records who ran what, when, on which input and with which outcome, using
fingerprints (hashes) and counts, never values. Events go to an :class:`AuditSink`; the default is
a JSON Lines file (``$GUARDFLOW_AUDIT_PATH``, else ``~/.guardflow/audit.jsonl``). When the ``otel``
extra is installed, each step is also an OpenTelemetry span carrying the same attributes.

Examples:
    >>> from guardflow.audit import MemoryAuditSink, audit_step
    >>> sink = MemoryAuditSink()
    >>> with audit_step("inference", sink=sink) as rec:
    ...     rec.counts["rows"] = 3
    >>> sink.events[0].outcome
    'success'
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from guardflow.identity import RunIdentity

__all__ = [
    "AuditEvent",
    "AuditRecorder",
    "AuditSink",
    "JsonlAuditSink",
    "MemoryAuditSink",
    "audit_step",
    "default_sink",
]


class AuditEvent(BaseModel):
    """One step's audit record. Holds fingerprints and counts, never data values or secrets."""

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    step_kind: str
    identity: RunIdentity = Field(default_factory=RunIdentity)
    actor: str | None = None
    input_fingerprints: dict[str, str] = Field(default_factory=dict)
    output_fingerprints: dict[str, str] = Field(default_factory=dict)
    model_name: str | None = None
    model_version: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    durations_ms: dict[str, float] = Field(default_factory=dict)
    outcome: str = "success"
    error_type: str | None = None
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)


@runtime_checkable
class AuditSink(Protocol):
    """Where audit events go. Implementations must be safe to call from several threads."""

    def emit(self, event: AuditEvent) -> None:
        """Record one event."""


class JsonlAuditSink:
    """Append events as JSON Lines to a local file (one line per event, flushed per write).

    Args:
        path: The file; parent folders are created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def emit(self, event: AuditEvent) -> None:
        """Append ``event`` to the file."""
        line = event.model_dump_json() + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)

    def read(self) -> list[AuditEvent]:
        """Return every event in the file, oldest first."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [AuditEvent.model_validate(json.loads(line)) for line in fh if line.strip()]


class MemoryAuditSink:
    """Keep events in a list; for tests and for callers that forward events themselves."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self._lock = threading.Lock()

    def emit(self, event: AuditEvent) -> None:
        """Append ``event`` to :attr:`events`."""
        with self._lock:
            self.events.append(event)


def default_sink() -> AuditSink:
    """Return the sink named by ``$GUARDFLOW_AUDIT_PATH`` (default ``~/.guardflow/audit.jsonl``)."""
    path = os.environ.get("GUARDFLOW_AUDIT_PATH") or str(Path.home() / ".guardflow" / "audit.jsonl")
    return JsonlAuditSink(path)


class AuditRecorder:
    """Mutable view of the event being built inside :func:`audit_step`."""

    def __init__(self, event: AuditEvent) -> None:
        self.event = event
        self._marks: dict[str, float] = {}

    @property
    def counts(self) -> dict[str, int]:
        """Counts to record (rows, failures, batches...)."""
        return self.event.counts

    @property
    def attributes(self) -> dict[str, str | int | float | bool]:
        """Extra scalar attributes (never values from the data)."""
        return self.event.attributes

    def set_input(self, name: str, fingerprint: str) -> None:
        """Record an input's fingerprint."""
        self.event.input_fingerprints[name] = fingerprint

    def set_output(self, name: str, fingerprint: str) -> None:
        """Record an output's fingerprint."""
        self.event.output_fingerprints[name] = fingerprint

    def set_model(self, name: str | None, version: str | None) -> None:
        """Record the model that served the step."""
        self.event.model_name = name
        self.event.model_version = version

    def set_outcome(self, outcome: str) -> None:
        """Override the outcome (``success`` on normal exit, ``failed`` on exception)."""
        self.event.outcome = outcome

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase of the step into ``durations_ms[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            self.event.durations_ms[name] = self.event.durations_ms.get(name, 0.0) + elapsed


def _otel_span(name: str) -> contextlib.AbstractContextManager[Any]:
    try:
        from opentelemetry import trace
    except ImportError:
        return contextlib.nullcontext(None)
    return trace.get_tracer("guardflow").start_as_current_span(name)


@contextlib.contextmanager
def audit_step(
    step_kind: str,
    *,
    identity: RunIdentity | None = None,
    sink: AuditSink | None = None,
    actor: str | None = None,
) -> Iterator[AuditRecorder]:
    """Record one step: time it, capture its outcome, emit an :class:`AuditEvent`.

    The event is emitted whether the step succeeds or raises; an exception is re-raised after the
    event records its type (not its message, which could echo data).

    Args:
        step_kind: ``"inference"``, ``"pii"``, ``"drift"``, ``"gate"``, ``"secret"``...
        identity: The run identity; defaults to an ad-hoc CLI identity.
        sink: Where the event goes; defaults to :func:`default_sink`.
        actor: Who acted, when a person did (gate decisions).

    Yields:
        An :class:`AuditRecorder` to fill in.
    """
    event = AuditEvent(step_kind=step_kind, identity=identity or RunIdentity(), actor=actor)
    recorder = AuditRecorder(event)
    start = time.perf_counter()
    with _otel_span(f"guardflow.{step_kind}") as span:
        try:
            yield recorder
        except BaseException as exc:
            event.outcome = "failed"
            event.error_type = type(exc).__name__
            raise
        finally:
            event.durations_ms["total"] = (time.perf_counter() - start) * 1000
            if span is not None:
                _fill_span(span, event)
            (sink or default_sink()).emit(event)


def _fill_span(span: Any, event: AuditEvent) -> None:
    ident = event.identity
    attrs: dict[str, Any] = {
        "guardflow.step_kind": event.step_kind,
        "guardflow.outcome": event.outcome,
        "guardflow.pipeline": ident.pipeline,
        "guardflow.run_id": ident.run_id,
        "guardflow.task_id": ident.task_id,
        "guardflow.map_index": ident.map_index,
    }
    if event.model_name:
        attrs["guardflow.model_name"] = event.model_name
    if event.model_version:
        attrs["guardflow.model_version"] = event.model_version
    for key, value in event.counts.items():
        attrs[f"guardflow.count.{key}"] = value
    span.set_attributes(attrs)
    if event.error_type:
        span.set_attribute("guardflow.error_type", event.error_type)
