"""The audit trail: one event per step, to a JSON Lines file by default, with an OTel span."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardflow.audit import JsonlAuditSink, MemoryAuditSink, audit_step, default_sink
from guardflow.identity import RunIdentity, step_key

IDENTITY = RunIdentity(orchestrator="airflow", pipeline="dag", run_id="run", task_id="t")


def test_a_step_leaves_one_event_with_what_it_recorded() -> None:
    sink = MemoryAuditSink()
    with audit_step("inference", identity=IDENTITY, sink=sink) as rec:
        rec.set_input("input", "sha256:in")
        rec.set_output("output", "sha256:out")
        rec.set_model("m", "3")
        rec.counts["rows"] = 10
    [event] = sink.events
    assert (event.step_kind, event.identity, event.outcome) == ("inference", IDENTITY, "success")
    assert (event.input_fingerprints, event.output_fingerprints) == (
        {"input": "sha256:in"},
        {"output": "sha256:out"},
    )
    assert (event.model_name, event.model_version, event.counts) == ("m", "3", {"rows": 10})
    assert set(event.durations_ms) == {"total"}


def test_a_failing_step_records_the_error_type_but_not_its_message() -> None:
    sink = MemoryAuditSink()
    with pytest.raises(ValueError), audit_step("pii", sink=sink):
        raise ValueError("row value SECRET-VALUE")
    [event] = sink.events
    assert (event.outcome, event.error_type) == ("failed", "ValueError")
    assert "SECRET-VALUE" not in event.model_dump_json()


def test_events_append_to_a_json_lines_file(tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path / "deep" / "audit.jsonl")
    for kind in ("inference", "gate"):
        with audit_step(kind, sink=sink):
            pass
    assert [e.step_kind for e in sink.read()] == ["inference", "gate"]
    assert len((tmp_path / "deep" / "audit.jsonl").read_text().splitlines()) == 2


def test_the_default_sink_is_the_file_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDFLOW_AUDIT_PATH", str(tmp_path / "trail.jsonl"))
    with audit_step("drift"):
        pass
    sink = default_sink()
    assert isinstance(sink, JsonlAuditSink)
    assert [e.step_kind for e in sink.read()] == ["drift"]


def test_step_keys_ignore_the_attempt_but_not_the_input() -> None:
    retry = IDENTITY.model_copy(update={"attempt": 2})
    assert step_key(IDENTITY, "sha256:a") == step_key(retry, "sha256:a")
    assert step_key(IDENTITY, "sha256:a") != step_key(IDENTITY, "sha256:b")
    assert step_key(IDENTITY, "sha256:a") != step_key(IDENTITY, "sha256:a", purpose="x")


def test_each_step_is_an_opentelemetry_span_with_the_event_attributes() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set only once
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    with audit_step("inference", identity=IDENTITY, sink=MemoryAuditSink()) as rec:
        rec.set_model("m", "3")
        rec.counts["rows"] = 5

    [span] = [s for s in exporter.get_finished_spans() if s.name == "guardflow.inference"]
    attributes = dict(span.attributes or {})
    assert attributes["guardflow.pipeline"] == "dag"
    assert attributes["guardflow.model_version"] == "3"
    assert attributes["guardflow.count.rows"] == 5
    assert attributes["guardflow.outcome"] == "success"
