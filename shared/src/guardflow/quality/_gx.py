"""Running a suite with Great Expectations 1.x, and reading its result without the data values.

Each run gets its own ephemeral (in-memory) data context with a pandas data source, one dataframe
asset and a whole-dataframe batch definition, and progress bars and analytics switched off in that
context's configuration (nothing is set in the environment). ``gx.get_context()`` also makes the
new context GX's process-wide "current project"; the previous one is put back afterwards, so a
caller's own GX project is left as it was. A lock serialises runs: the current project is
process-wide.
"""

from __future__ import annotations

import math
import numbers
import threading
from typing import Any

from guardflow.errors import InputDataError
from guardflow.quality._imports import gx_module
from guardflow.quality.suite import named_columns
from guardflow.quality.summary import FailedExpectation, QualitySummary

__all__ = ["AGGREGATE_EXPECTATIONS", "run_suite", "summarize"]

AGGREGATE_EXPECTATIONS: frozenset[str] = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_row_count_to_equal_other_table",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_column_mean_to_be_between",
        "expect_column_stdev_to_be_between",
        "expect_column_sum_to_be_between",
        "expect_column_unique_value_count_to_be_between",
        "expect_column_proportion_of_unique_values_to_be_between",
        "expect_column_proportion_of_non_null_values_to_be_between",
        "expect_column_kl_divergence_to_be_less_than",
    }
)
"""Expectations whose observed value is a statistic of a whole column or table, kept in summaries.

Minimum, maximum, median, quantiles, most common value and distinct values are values from the data
(a median of an odd count is one row's value) and are never kept.
"""

_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
_LOCK = threading.Lock()


def run_suite(frame: Any, suite: Any) -> Any:
    """Validate a pandas DataFrame against a suite in a fresh ephemeral context.

    Args:
        frame: The pandas DataFrame.
        suite: An ``ExpectationSuite`` bound to no context (see :func:`load_suite`); it is bound to
            the ephemeral context, so pass a fresh one each time.

    Returns:
        Great Expectations' ``ExpectationSuiteValidationResult``, results in suite order.
    """
    gx = gx_module("great_expectations")
    base = gx_module("great_expectations.data_context.types.base")
    factory = gx_module("great_expectations.data_context.data_context.context_factory")
    config = base.DataContextConfig(
        store_backend_defaults=base.InMemoryStoreBackendDefaults(),
        progress_bars=base.ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    with _LOCK:
        previous = _current_project(factory.project_manager)
        try:
            context = gx.get_context(mode="ephemeral", project_config=config)
            bound = context.suites.add(suite)
            batch = (
                context.data_sources.add_pandas("guardflow")
                .add_dataframe_asset("data")
                .add_batch_definition_whole_dataframe("all")
            )
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name="guardflow", data=batch, suite=bound)
            )
            result = definition.run(
                batch_parameters={"dataframe": frame}, result_format=dict(_RESULT_FORMAT)
            )
        except Exception as exc:
            # Per-expectation failures are caught by GX itself; what escapes is about the frame
            # as a whole, and GX's message may quote values, so only its type is kept.
            raise InputDataError(
                f"Great Expectations could not validate the data with suite {suite.name!r} "
                f"({type(exc).__name__}); check the column types the suite expects"
            ) from None
        finally:
            factory.project_manager.set_project(previous)
    # GX reports expectations in the order it computed them; readers expect the suite's order.
    order = {e.id: i for i, e in enumerate(bound.expectations)}
    result.results.sort(key=lambda r: order.get(r.expectation_config.id, len(order)))
    return result


def _current_project(manager: Any) -> Any:
    try:
        return manager.get_current_project()
    except Exception:  # DataContextRequiredError: no project yet, which is the usual case
        return None


def summarize(
    result: Any, *, suite_name: str, rows: int, columns: list[str], fingerprint: str | None
) -> QualitySummary:
    """Turn a GX validation result into a :class:`QualitySummary`, dropping every data value.

    Args:
        result: The ``ExpectationSuiteValidationResult``.
        suite_name: The suite's name.
        rows: Rows validated.
        columns: The data's column names (to explain expectations on missing columns).
        fingerprint: The data's fingerprint, if known.
    """
    stats = result.statistics or {}
    evaluated = int(stats.get("evaluated_expectations") or 0)
    percent = _number(stats.get("success_percent"))
    failed = [_failed(r, set(columns)) for r in result.results if not r.success]
    return QualitySummary(
        suite_name=suite_name,
        success=bool(result.success),
        evaluated=evaluated,
        successful=int(stats.get("successful_expectations") or 0),
        unsuccessful=int(stats.get("unsuccessful_expectations") or 0),
        success_percent=100.0 if percent is None and evaluated == 0 else (percent or 0.0),
        failed=failed,
        rows=rows,
        data_fingerprint=fingerprint,
    )


def _failed(item: Any, present: set[str]) -> FailedExpectation:
    config = item.expectation_config
    etype = str(config.type)
    kwargs = config.kwargs or {}
    named = named_columns(kwargs)
    res = item.result or {}
    count = _number(res.get("unexpected_count"))
    severity = getattr(config, "severity", "critical")
    return FailedExpectation(
        type=etype,
        column=kwargs["column"] if isinstance(kwargs.get("column"), str) else None,
        columns=named,
        unexpected_count=None if count is None else int(count),
        unexpected_percent=_number(res.get("unexpected_percent")),
        observed_value=(
            _number(res.get("observed_value")) if etype in AGGREGATE_EXPECTATIONS else None
        ),
        severity=str(getattr(severity, "value", severity)),
        error=_error(item.exception_info, named, present),
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _error(info: Any, named: list[str], present: set[str]) -> str | None:
    raised = _raised(info)
    if raised is None:
        return None
    missing = [c for c in named if c not in present]
    if missing:
        return f"column {', '.join(repr(c) for c in missing)} not in the data"
    return f"could not be evaluated ({raised})"


def _raised(info: Any) -> str | None:
    """Return the exception class name if GX recorded one (flat or per-metric info)."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        if not info.get("raised_exception"):
            return None
        # Only the class name: GX's message and traceback may quote the data.
        last = (info.get("exception_traceback") or "").strip().splitlines()[-1:] or [""]
        name = last[0].split(":", 1)[0].rsplit(".", 1)[-1].strip()
        return name if name.isidentifier() else "an exception"
    for nested in info.values():
        name = _raised(nested)
        if name is not None:
            return name
    return None
