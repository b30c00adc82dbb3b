"""The result of a drift check: one score per column, the drifted share and the verdict.

A :class:`DriftReport` holds names, counts, scores and fingerprints, never data values, so it can go
to logs, XCom, Prefect artifacts and MLflow as is.

Examples:
    >>> col = ColumnDrift(column="age", column_type="num", method="ks", score=0.01,
    ...                   threshold=0.05, drifted=True)
    >>> report = DriftReport(columns=[col], drifted_count=1, column_count=1, drifted_share=1.0,
    ...                      drift_share=0.5, dataset_drift=True, engine="native",
    ...                      reference_rows=10, current_rows=10)
    >>> report.cli_dict()["columns"][0]["method"]
    'ks'
    >>> DriftReport.from_json(report.to_json()) == report
    True
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ColumnDrift", "DriftReport"]


class ColumnDrift(BaseModel):
    """The drift test of one column.

    Attributes:
        column: Column name.
        column_type: ``"num"`` or ``"cat"``, as detected (or forced by the config).
        method: Test name (``ks``, ``chisquare``, ``z``, ``wasserstein``, ``jensenshannon``,
            ``psi``, ``hellinger``, ``chisquare_2sample``).
        score: The p-value (``ks``, ``chisquare``, ``z``, ``chisquare_2sample``: drift when below
            the threshold) or the distance (others: drift when at or above the threshold).
        threshold: The threshold the score was compared with.
        drifted: Whether the column drifted.
        reference_nulls: Null, NaN and infinite values dropped from the reference column.
        current_nulls: The same in the current column.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    column_type: Literal["num", "cat"]
    method: str
    score: float
    threshold: float
    drifted: bool
    reference_nulls: int | None = None
    current_nulls: int | None = None


class DriftReport(BaseModel):
    """The drift check of a dataset.

    Attributes:
        columns: One :class:`ColumnDrift` per compared column, in input order.
        drifted_count: How many columns drifted.
        column_count: How many columns were compared.
        drifted_share: ``drifted_count / column_count``.
        drift_share: The configured share at or above which the dataset drifts.
        dataset_drift: The verdict: ``drifted_share >= drift_share``.
        engine: ``"native"`` or ``"evidently"``.
        reference_rows: Rows in the reference (as profiled, for a saved profile).
        current_rows: Rows in the current data.
        reference_fingerprint: Fingerprint of the reference data (``sha256:...``).
        current_fingerprint: Fingerprint of the current data.
        html_uri: Where the Evidently HTML report was written, when it was asked for.
        skipped_columns: Columns present on one side only, skipped because ``config.columns``
            was not given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[ColumnDrift]
    drifted_count: int
    column_count: int
    drifted_share: float
    drift_share: float = 0.5
    dataset_drift: bool
    engine: Literal["native", "evidently"] = "native"
    reference_rows: int
    current_rows: int
    reference_fingerprint: str | None = None
    current_fingerprint: str | None = None
    html_uri: str | None = None
    skipped_columns: list[str] = Field(default_factory=list)

    @classmethod
    def from_columns(
        cls,
        columns: list[ColumnDrift],
        *,
        drift_share: float,
        engine: Literal["native", "evidently"],
        reference_rows: int,
        current_rows: int,
        **extra: Any,
    ) -> DriftReport:
        """Build a report from column results, applying Evidently's dataset rule.

        The dataset drifts when ``drifted_count / column_count >= drift_share`` (Evidently's
        ``get_dataset_drift`` rule); a report of no columns never drifts.

        Args:
            columns: The per-column results.
            drift_share: Share of drifted columns at or above which the dataset drifts.
            engine: Which engine computed the scores.
            reference_rows: Rows in the reference.
            current_rows: Rows in the current data.
            **extra: Other fields (fingerprints, ``html_uri``, ``skipped_columns``).

        Returns:
            The report.
        """
        drifted = sum(1 for c in columns if c.drifted)
        total = len(columns)
        return cls(
            columns=columns,
            drifted_count=drifted,
            column_count=total,
            drifted_share=drifted / total if total else 0.0,
            drift_share=drift_share,
            dataset_drift=bool(total) and drifted / total >= drift_share,
            engine=engine,
            reference_rows=reference_rows,
            current_rows=current_rows,
            **extra,
        )

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns that drifted, in report order."""
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """Return the whole report as JSON-safe built-ins."""
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = None) -> str:
        """Return the whole report as JSON (read it back with :meth:`from_json`)."""
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> DriftReport:
        """Read a report written by :meth:`to_json`."""
        return cls.model_validate_json(text)

    def cli_dict(self) -> dict[str, Any]:
        """Return the CLI's ``--format json`` shape.

        Returns:
            Exactly ``{"dataset_drift", "drifted_share", "columns": [{"column", "method",
            "score", "threshold", "drifted"}]}``.
        """
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_share": self.drifted_share,
            "columns": [
                {
                    "column": c.column,
                    "method": c.method,
                    "score": c.score,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in self.columns
            ],
        }

    def to_text(self) -> str:
        """Return a plain-text table of the report, for terminals and logs."""
        verdict = "DRIFT" if self.dataset_drift else "no drift"
        lines = [
            f"dataset: {verdict}: {self.drifted_count}/{self.column_count} columns drifted "
            f"(share {self.drifted_share:.3f}, drift at >= {self.drift_share:g}; "
            f"engine {self.engine}; reference {self.reference_rows} rows, "
            f"current {self.current_rows} rows)"
        ]
        width = max([len("column"), *(len(c.column) for c in self.columns)])
        lines.append(f"{'column':<{width}}  type  {'method':<17}  {'score':>12}  threshold  drift")
        for c in self.columns:
            lines.append(
                f"{c.column:<{width}}  {c.column_type:<4}  {c.method:<17}  {c.score:>12.6g}  "
                f"{c.threshold:>9g}  {'yes' if c.drifted else 'no'}"
            )
        if self.skipped_columns:
            lines.append(f"skipped (on one side only): {', '.join(self.skipped_columns)}")
        if self.html_uri:
            lines.append(f"html report: {self.html_uri}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()
