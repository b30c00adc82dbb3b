"""The PII report: what was found where, as counts. It never holds a value from the data.

Examples:
    >>> report = PIIReport(counts={"notes": {"EMAIL_ADDRESS": 2}}, rows_scanned=10)
    >>> report.total, report.found("notes"), report.found("other")
    (2, 2, 0)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from guardflow.errors import PIIFoundError

__all__ = ["PIIReport"]


class PIIReport(BaseModel):
    """Counts of the PII found (and masked) per column and entity type.

    Attributes:
        counts: Column → entity type → number of entities found.
        violations: Column → entity type → count, for types the policy's ``allow`` does not
            permit in that column (equal to ``counts`` when nothing is allowed).
        rows_scanned: Rows read.
        rows_touched: Rows with at least one entity found.
        bytes_scanned: UTF-8 bytes of the values scanned.
        columns_scanned: The columns scanned or transformed.
        duration_s: Wall time of the run.
        input_fingerprint: ``sha256:...`` of the input, when known.
        output_uri: Where the masked output went (without credentials), if anywhere.
        batches: Batches (row groups, CSV blocks, JSONL line batches) processed.
    """

    counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    violations: dict[str, dict[str, int]] = Field(default_factory=dict)
    rows_scanned: int = 0
    rows_touched: int = 0
    bytes_scanned: int = 0
    columns_scanned: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    input_fingerprint: str | None = None
    output_uri: str | None = None
    batches: int = 0

    @property
    def total(self) -> int:
        """All entities found, over every column and type."""
        return sum(sum(types.values()) for types in self.counts.values())

    def found(self, column: str | None = None) -> int:
        """Entities found in ``column`` (every column when ``None``)."""
        if column is None:
            return self.total
        return sum(self.counts.get(column, {}).values())

    def by_type(self) -> dict[str, int]:
        """Entities found per type, over every column."""
        totals: Counter[str] = Counter()
        for types in self.counts.values():
            totals.update(types)
        return dict(sorted(totals.items()))

    def headline(self) -> str:
        """One line for a task log: rows scanned and touched, entities per column and type.

        Examples:
            >>> PIIReport(counts={"note": {"EMAIL_ADDRESS": 2}}, rows_scanned=5).headline()
            'PII report: 5 rows scanned, 0 touched, 2 entities: note.EMAIL_ADDRESS=2'
        """
        parts = [
            f"{column}.{kind}={n}"
            for column, types in sorted(self.counts.items())
            for kind, n in sorted(types.items())
            if n
        ]
        return (
            f"PII report: {self.rows_scanned} rows scanned, {self.rows_touched} touched, "
            f"{self.total} entities" + (f": {', '.join(parts)}" if parts else "")
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return self.model_dump(mode="json")

    def raise_for_violations(self) -> None:
        """Raise :class:`~guardflow.errors.PIIFoundError` when PII was found where not allowed.

        Raises:
            PIIFoundError: Carrying this report; the message names columns, types and counts.
        """
        if not any(sum(t.values()) for t in self.violations.values()):
            return
        where = "; ".join(
            f"{column}: " + ", ".join(f"{kind}={n}" for kind, n in sorted(types.items()))
            for column, types in sorted(self.violations.items())
            if sum(types.values())
        )
        raise PIIFoundError(
            f"PII found where the policy allows none ({where}); mask the data first "
            "(guardflow pii mask) or allow these types for these columns in the policy",
            report=self,
        )
