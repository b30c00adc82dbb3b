"""Results of an inference step: the JSON-safe summary returned to XCom and Prefect."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["InferenceSummary", "LatencyStats"]


class LatencyStats(BaseModel):
    """Per-batch request latency in milliseconds (successful batches only)."""

    p50: float = 0.0
    p95: float = 0.0
    max: float = 0.0


class InferenceSummary(BaseModel):
    """What an inference step did; small, JSON-safe, never holds data values.

    Args:
        rows: Input rows.
        succeeded: Rows with a prediction in the output.
        failed: Rows written to the dead-letter output.
        batches: Batches in the step.
        batches_resumed: Batches taken from an earlier attempt's checkpoint (not sent again).
        output_uri: Where predictions were written.
        dead_letter_uri: Where failed rows were written, if any failed.
        model_name: Model name reported by the server (or configured).
        model_version: Model version reported by the server, when it reports one.
        step_key: The deterministic step key (stable across retries).
        duration_s: Wall time of the step.
        rows_per_second: Rows sent per second of wall time.
        latency_ms: Per-batch latency statistics.
        errors: Count of failed batches per error type.
    """

    rows: int
    succeeded: int
    failed: int
    batches: int
    batches_resumed: int = 0
    output_uri: str | None = None
    dead_letter_uri: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    step_key: str
    duration_s: float
    rows_per_second: float
    latency_ms: LatencyStats = Field(default_factory=LatencyStats)
    errors: dict[str, int] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON types (what goes to XCom or a task result)."""
        return self.model_dump(mode="json")
