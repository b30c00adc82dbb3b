"""The compact result of a data-quality run: counts and failed expectations, never data values.

Great Expectations' own result carries samples of the failing values (``partial_unexpected_list``,
``partial_unexpected_counts``, unexpected rows and indexes) and, for some expectations, observed
values taken from the data (a column's maximum, its most common value, its distinct values). A
:class:`QualitySummary` keeps none of them, so it can go to logs, XCom, Prefect artifacts, MLflow
and exception messages as is. The only observed values it keeps are numbers computed over a whole
column or table (a mean, a standard deviation, a row count: see
:data:`guardflow.quality.AGGREGATE_EXPECTATIONS`).

Examples:
    >>> failed = FailedExpectation(type="expect_column_values_to_not_be_null", column="email",
    ...                            columns=["email"], unexpected_count=3, unexpected_percent=0.3)
    >>> summary = QualitySummary(suite_name="orders", success=False, evaluated=4, successful=3,
    ...                          unsuccessful=1, success_percent=75.0, failed=[failed], rows=1000)
    >>> summary.failed_columns
    ['email']
    >>> QualitySummary.from_json(summary.to_json()) == summary
    True
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from guardflow.errors import DataQualityError

__all__ = ["FailedExpectation", "QualitySummary"]


class FailedExpectation(BaseModel):
    """One expectation that did not pass.

    Attributes:
        type: The expectation type, e.g. ``expect_column_values_to_not_be_null``.
        column: The column the expectation is about, for single-column expectations.
        columns: Every column the expectation names (``column``, ``column_A``/``column_B``,
            ``column_list``), in the order given.
        unexpected_count: Values that did not meet the expectation (map expectations only).
        unexpected_percent: Their share of the non-null values, in percent (map expectations only).
        observed_value: The observed statistic, for aggregate expectations only (mean, standard
            deviation, sum, row/column/unique counts, proportions); never a value from the data.
        severity: The expectation's severity (``critical``, ``warning`` or ``info``).
        error: Why the expectation could not be evaluated, if it raised (e.g. a missing column).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    column: str | None = None
    columns: list[str] = Field(default_factory=list)
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: float | None = None
    severity: str = "critical"
    error: str | None = None


class QualitySummary(BaseModel):
    """What a data-quality run found; small, JSON-safe, never holds data values.

    Attributes:
        suite_name: The expectation suite's name.
        success: Whether every expectation passed.
        evaluated: Expectations evaluated.
        successful: Expectations that passed.
        unsuccessful: Expectations that failed (or could not be evaluated).
        success_percent: ``successful / evaluated`` in percent (100 for an empty suite).
        failed: The expectations that failed, in suite order.
        rows: Rows validated.
        data_fingerprint: Fingerprint of the validated data (``sha256:...``), when it could be
            computed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite_name: str
    success: bool
    evaluated: int
    successful: int
    unsuccessful: int
    success_percent: float
    failed: list[FailedExpectation] = Field(default_factory=list)
    rows: int
    data_fingerprint: str | None = None

    @property
    def failed_columns(self) -> list[str]:
        """Columns named by failed expectations, each once, in order of first failure."""
        seen: dict[str, None] = {}
        for item in self.failed:
            for column in item.columns:
                seen.setdefault(column, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-safe built-ins (what goes to XCom or a task result)."""
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = None) -> str:
        """Return the summary as JSON (read it back with :meth:`from_json`)."""
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> QualitySummary:
        """Read a summary written by :meth:`to_json`."""
        return cls.model_validate_json(text)

    def headline(self) -> str:
        """Return one line: the suite, the verdict and the counts."""
        verdict = "passed" if self.success else "FAILED"
        return (
            f"suite {self.suite_name!r} {verdict}: {self.successful}/{self.evaluated} expectations "
            f"passed ({self.success_percent:.1f}%) on {self.rows} rows"
        )

    def to_text(self) -> str:
        """Return the headline and a plain-text table of the failed expectations."""
        lines = [self.headline()]
        if not self.failed:
            return lines[0]
        width = max(len(f.type) for f in self.failed)
        lines.append(
            f"{'expectation':<{width}}  {'column':<20}  {'unexpected':>10}  {'%':>7}  note"
        )
        for f in self.failed:
            count = "" if f.unexpected_count is None else str(f.unexpected_count)
            share = "" if f.unexpected_percent is None else f"{f.unexpected_percent:.2f}"
            notes = [f.error] if f.error else []
            if f.observed_value is not None:
                notes.append(f"observed {f.observed_value:g}")
            if f.severity != "critical":
                notes.append(f.severity)
            lines.append(
                f"{f.type:<{width}}  {', '.join(f.columns) or '(table)':<20}  {count:>10}  "
                f"{share:>7}  {'; '.join(notes)}".rstrip()
            )
        return "\n".join(lines)

    def raise_for_failure(self) -> QualitySummary:
        """Raise :class:`DataQualityError` carrying this summary when the suite failed.

        Returns:
            The summary itself when the suite passed, so calls chain.

        Raises:
            DataQualityError: At least one expectation failed; the message names the suite, the
                failed expectation types and their columns, never data values.
        """
        if self.success:
            return self
        named = ", ".join(
            f"{f.type}({', '.join(f.columns)})" if f.columns else f.type for f in self.failed[:5]
        )
        more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
        raise DataQualityError(
            f"data quality suite {self.suite_name!r} failed {self.unsuccessful} of "
            f"{self.evaluated} expectations on {self.rows} rows: {named}{more}; fix the data "
            "upstream or relax the suite",
            summary=self,
        )

    def __str__(self) -> str:
        return self.headline()
