"""Data quality: Great Expectations 1.x suites run on any table, summarised without data values.

:func:`validate_data` runs an expectation suite (a GX ``ExpectationSuite``, a dict, or a YAML or
JSON file) on a pandas or polars DataFrame, an Arrow table, records, or a Parquet/CSV/JSONL file or
URI, in an ephemeral GX context, and returns a :class:`QualitySummary`: counts and the failed
expectations with their unexpected counts, never the failing values. Great Expectations is
imported on first use (it takes several seconds), never when this package is imported.

Examples:
    >>> from guardflow.quality import validate_data
    >>> suite = {"name": "orders", "expectations": [
    ...     {"type": "expect_column_values_to_be_between",
    ...      "kwargs": {"column": "amount", "min_value": 0}}]}
    >>> summary = validate_data([{"amount": 5.0}, {"amount": -1.0}], suite)
    >>> summary.success, summary.failed_columns
    (False, ['amount'])
"""

from __future__ import annotations

from guardflow.quality._gx import AGGREGATE_EXPECTATIONS
from guardflow.quality.suite import load_suite
from guardflow.quality.summary import FailedExpectation, QualitySummary
from guardflow.quality.validate import validate_data

__all__ = [
    "AGGREGATE_EXPECTATIONS",
    "FailedExpectation",
    "QualitySummary",
    "load_suite",
    "validate_data",
]
