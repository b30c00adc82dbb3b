"""validate_data: run an expectation suite on a table, return a summary, leave an audit event."""

from __future__ import annotations

from typing import Any

from guardflow._optional import require
from guardflow.audit import AuditSink, audit_step
from guardflow.errors import InputDataError
from guardflow.fingerprint import fingerprint_table
from guardflow.identity import RunIdentity
from guardflow.quality._gx import run_suite, summarize
from guardflow.quality.suite import load_suite
from guardflow.quality.summary import QualitySummary
from guardflow.tables import read_table

__all__ = ["validate_data"]


def validate_data(
    data: Any,
    suite: Any,
    *,
    identity: RunIdentity | None = None,
    audit_sink: AuditSink | None = None,
) -> QualitySummary:
    """Validate ``data`` against a Great Expectations suite and return a compact summary.

    The suite runs in a fresh ephemeral GX context (nothing written to disk, no progress bars, no
    analytics). A failing suite is a result, not an error: check ``summary.success``, or call
    ``summary.raise_for_failure()`` to raise :class:`~guardflow.errors.DataQualityError`.

    Args:
        data: A pandas or polars DataFrame, a pyarrow Table, a list of dicts, or the path or URI of
            a ``.parquet``, ``.csv`` or ``.jsonl`` file. A pandas DataFrame is validated as is;
            everything else is read into Arrow and converted to pandas.
        suite: Anything :func:`~guardflow.quality.load_suite` accepts: a GX ``ExpectationSuite``,
            a dict, or a ``.yaml``/``.json`` suite file.
        identity: The run identity recorded in the audit event.
        audit_sink: Where the audit event goes (default: :func:`guardflow.audit.default_sink`).

    Returns:
        The :class:`QualitySummary`: counts and failed expectations, never data values.

    Raises:
        InputDataError: The data is missing, unreadable or has no rows.
        ConfigurationError: The suite is invalid (unknown expectation type, bad arguments).
        MissingExtraError: great-expectations or pandas is not installed (``quality`` extra).

    Examples:
        >>> not_null = {"type": "expect_column_values_to_not_be_null",
        ...             "kwargs": {"column": "amount"}}
        >>> summary = validate_data(
        ...     [{"id": 1, "amount": 10.0}, {"id": 2, "amount": None}],
        ...     {"name": "orders", "expectations": [not_null]},
        ... )
        >>> summary.success, summary.failed[0].unexpected_count
        (False, 1)
    """
    gx_suite = load_suite(suite)
    with audit_step("quality", identity=identity, sink=audit_sink) as rec:
        with rec.phase("read"):
            frame, fingerprint = _frame(data)
        if fingerprint:
            rec.set_input("data", fingerprint)
        rec.attributes["suite"] = gx_suite.name
        with rec.phase("validate"):
            result = run_suite(frame, gx_suite)
        summary = summarize(
            result,
            suite_name=gx_suite.name,
            rows=len(frame.index),
            columns=[str(c) for c in frame.columns],
            fingerprint=fingerprint,
        )
        rec.counts.update(
            rows=summary.rows,
            expectations=summary.evaluated,
            failed_expectations=summary.unsuccessful,
        )
        rec.attributes["success"] = summary.success
    return summary


def _frame(data: Any) -> tuple[Any, str | None]:
    """Return (pandas DataFrame, fingerprint of its Arrow form or None)."""
    if type(data).__module__.split(".", 1)[0] == "pandas" and hasattr(data, "columns"):
        if len(data.index) == 0:
            raise InputDataError("the input has no rows; there is nothing to validate")
        return data, _pandas_fingerprint(data)
    table = read_table(data)
    require("pandas", "quality")
    return table.to_pandas(), fingerprint_table(table)


def _pandas_fingerprint(frame: Any) -> str | None:
    pa = require("pyarrow", "quality")
    try:
        return fingerprint_table(pa.Table.from_pandas(frame, preserve_index=False))
    except (pa.ArrowException, TypeError, ValueError):
        # Object columns mixing types have no Arrow form; GX validates them all the same.
        return None
