"""check_drift: compare current data with a reference, column by column.

Note to the Evidently engine (``guardflow.drift._evidently``, helper F), the contract between us:
``run_evidently(reference_df, current_df, config, html_path) -> DriftReport`` receives

- ``reference_df``, ``current_df``: pandas DataFrames holding exactly ``config.columns``, in that
  order, as pandas holds the data (``pyarrow.Table.to_pandas()`` of the selected columns).
  With a :class:`ReferenceProfile` as reference, ``reference_df`` is rebuilt from the profile:
  each column's non-null values followed by NaN/None up to the profiled row count (row
  alignment across columns is lost; per-column tests do not need it).
- ``config``: a :class:`DriftConfig` already resolved by this module: ``columns`` is the list of
  compared columns, and ``numerical`` / ``categorical`` together list every one of them with the
  type the native engine uses (so Evidently never re-detects types); ``method``, ``threshold``,
  ``per_column`` and ``drift_share`` are the user's.
- It returns a :class:`DriftReport` with ``engine="evidently"``, columns in ``config.columns``
  order, ``reference_rows``/``current_rows`` = ``len(df)`` and ``html_uri`` when it wrote HTML;
  :func:`check_drift` then fills ``reference_fingerprint``, ``current_fingerprint``,
  ``skipped_columns`` and (for a profile) ``reference_rows`` with ``model_copy(update=...)``.
- ``chisquare_2sample`` does not exist in Evidently: ``run_evidently`` raises ConfigurationError.
- As in Evidently, only tests named in the config are checked against the column type; the
  default choice may run ``chisquare``/``z`` on a numerical column with few distinct values.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from guardflow.audit import AuditSink, audit_step
from guardflow.drift._methods import (
    ALLOWED_TYPES,
    DEFAULT_THRESHOLDS,
    default_method,
    drifted,
    run_method,
)
from guardflow.drift._schema import (
    Side,
    check_pair,
    column_type,
    data_side,
    reference_side,
    select_columns,
)
from guardflow.drift.config import DriftConfig
from guardflow.drift.report import ColumnDrift, DriftReport
from guardflow.errors import ConfigurationError, DriftInputError
from guardflow.identity import RunIdentity

__all__ = ["check_drift"]

_TYPE_NAMES = {"num": "numerical", "cat": "categorical"}


def _workers() -> int:
    # Sorting, Arrow kernels and hashing release the GIL, so columns and fingerprints overlap on
    # several cores; two columns in flight per core bounds the extra memory to a few columns.
    return max(1, min(4, os.cpu_count() or 1))


def check_drift(
    reference: Any,
    current: Any,
    *,
    config: DriftConfig | None = None,
    engine: Literal["native", "evidently"] = "native",
    html_path: str | None = None,
    identity: RunIdentity | None = None,
    audit_sink: AuditSink | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    Columns are compared by name. The test of each column is chosen as Evidently chooses it,
    unless the config names one: up to 1,000 non-null reference values, K-S for numeric columns
    with more than 5 distinct values (reference and current together), else chi-square (more than
    2) or the two-proportion z-test; above 1,000, the Wasserstein distance normed by the
    reference's standard deviation for numeric columns with more than 5 distinct values, else the
    Jensen-Shannon distance. A column's type is detected on the current data as Evidently does on
    pandas input: floats are numeric; integers (without nulls) are categorical up to 10 distinct
    values, numeric above; strings, booleans and categoricals (pandas ``category``, Arrow
    dictionaries) are categorical. Nulls, NaN and infinities are
    dropped per column and counted. The dataset drifts when the share of drifted columns reaches
    ``config.drift_share``.

    Args:
        reference: Records, a pandas or polars DataFrame, a pyarrow Table, a
            ``.parquet``/``.csv``/``.jsonl`` path or URI, a :class:`ReferenceProfile`, or the path
            or URI of a saved profile (``*.gfprofile``).
        current: The data to check, in any of the data forms above.
        config: Columns, types, tests and thresholds (default: Evidently's defaults on the
            columns both sides have; columns on one side only are listed in
            ``report.skipped_columns``, as are columns of untestable types such as dates).
        engine: ``"native"`` (default) or ``"evidently"`` (runs Evidently itself; needs the
            ``evidently`` extra).
        html_path: With ``engine="evidently"``, where to write Evidently's HTML report.
        identity: The run identity recorded in the audit event.
        audit_sink: Where the audit event goes (default :func:`guardflow.audit.default_sink`).

    Returns:
        The :class:`DriftReport` (also for drift: raising is the adapters' policy).

    Raises:
        DriftInputError: An input is empty or unreadable; a column named in ``config.columns`` is
            missing on a side; no column is common to both; a compared column has no values on a
            side (all null, NaN or infinite), holds numbers on one side and strings on the other,
            or is forced numerical but holds strings.
        ConfigurationError: A test was asked for on a column type it does not accept (``ks`` and
            ``wasserstein`` need numbers; ``chisquare`` and ``z`` are for categorical columns),
            or ``html_path`` was given to the native engine.

    Examples:
        >>> from guardflow.audit import MemoryAuditSink
        >>> reference = [{"x": float(i % 40)} for i in range(400)]
        >>> current = [{"x": float(i % 40) + 10.0} for i in range(400)]
        >>> report = check_drift(reference, current, audit_sink=MemoryAuditSink())
        >>> report.columns[0].method, report.dataset_drift
        ('ks', True)
    """
    config = config or DriftConfig()
    if engine not in ("native", "evidently"):
        raise ConfigurationError(f"unknown drift engine {engine!r}: use 'native' or 'evidently'")
    if html_path is not None and engine != "evidently":
        raise ConfigurationError("html_path needs engine='evidently' (Evidently renders the HTML)")
    with audit_step("drift", identity=identity, sink=audit_sink) as audit:
        audit.attributes["engine"] = engine
        with audit.phase("read"):
            ref = reference_side(reference)
            cur = data_side(current, side="current")
        audit.counts["reference_rows"] = ref.rows
        audit.counts["current_rows"] = cur.rows
        columns, skipped = select_columns(ref, cur, config)
        with audit.phase("compare"), ThreadPoolExecutor(_workers()) as pool:
            # fingerprints hash every byte of both sides: they run beside the column tests
            hashing = [pool.submit(side.fingerprint_data) for side in (ref, cur)]
            if engine == "evidently":
                report = _run_evidently(ref, cur, columns, config, html_path)
            else:
                report = DriftReport.from_columns(
                    _compare(ref, cur, columns, config, pool),
                    drift_share=config.drift_share,
                    engine="native",
                    reference_rows=ref.rows,
                    current_rows=cur.rows,
                )
            for future in hashing:
                future.result()
        for name, side in (("reference", ref), ("current", cur)):
            if side.fingerprint:
                audit.set_input(name, side.fingerprint)
        report = report.model_copy(
            update={
                "reference_fingerprint": ref.fingerprint,
                "current_fingerprint": cur.fingerprint,
                "reference_rows": ref.rows,
                "skipped_columns": skipped,
            }
        )
        audit.counts["columns"] = report.column_count
        audit.counts["drifted_columns"] = report.drifted_count
        audit.counts["skipped_columns"] = len(skipped)
        audit.attributes["dataset_drift"] = report.dataset_drift
        audit.attributes["drifted_share"] = report.drifted_share
        return report


def _compare(
    ref: Side, cur: Side, columns: list[str], config: DriftConfig, pool: ThreadPoolExecutor
) -> list[ColumnDrift]:
    # Summaries (sorts, value counts) are prefetched a few columns ahead on the pool; the tests
    # run here, in order, because they silence warnings and warning filters are process-global.
    ahead = _workers()
    summaries: dict[str, Future[None]] = {}

    def prefetch(index: int) -> None:
        if index < len(columns):
            name = columns[index]
            summaries[name] = pool.submit(_summarise, ref, cur, name)

    for index in range(ahead):
        prefetch(index)
    outcomes: dict[str, ColumnDrift | str] = {}
    for index, name in enumerate(columns):
        summaries.pop(name).result()
        outcomes[name] = _compare_column(ref, cur, name, config)
        prefetch(index + ahead)
    _raise_problems({name: out for name, out in outcomes.items() if isinstance(out, str)})
    return [out for out in outcomes.values() if isinstance(out, ColumnDrift)]


def _summarise(ref: Side, cur: Side, name: str) -> None:
    ref.stats(name)
    cur.stats(name)


def _compare_column(ref: Side, cur: Side, name: str, config: DriftConfig) -> ColumnDrift | str:
    """Test one column; return its result, or the problem that keeps it from being compared."""
    try:
        ref_stats, cur_stats = ref.stats(name), cur.stats(name)
        problem = check_pair(name, ref_stats, cur_stats, config)
        if problem:
            return problem
        kind = column_type(name, ref_stats, cur_stats, config)
        override = config.override_for(name)
        method = override.method or default_method(ref_stats, cur_stats, kind)
        # Evidently checks a test's column types only when it is asked for by name: its default
        # choice runs chi-square or z on numerical columns with few values
        if override.method and kind not in ALLOWED_TYPES[method]:
            raise ConfigurationError(
                f"test {method!r} does not apply to {_TYPE_NAMES[kind]} "
                f"column {name!r}; choose another test or force the column's type with "
                "config.categorical / config.numerical"
            )
        threshold = DEFAULT_THRESHOLDS[method] if override.threshold is None else override.threshold
        score = run_method(method, ref_stats, cur_stats, kind)
        return ColumnDrift(
            column=name,
            column_type=kind,
            method=method,
            score=score,
            threshold=threshold,
            drifted=drifted(method, score, threshold),
            reference_nulls=ref_stats.nulls,
            current_nulls=cur_stats.nulls,
        )
    finally:
        cur.forget(name)
        ref.forget(name)


def _raise_problems(problems: dict[str, str]) -> None:
    if problems:
        raise DriftInputError(
            "cannot compare: " + "; ".join(problems.values()), columns=list(problems)
        )


def _resolved_config(ref: Side, cur: Side, columns: list[str], config: DriftConfig) -> DriftConfig:
    """The config handed to the Evidently engine: every column's type decided here."""
    numerical: list[str] = []
    categorical: list[str] = []
    problems: dict[str, str] = {}
    for name in columns:
        ref_stats, cur_stats = ref.stats(name), cur.stats(name)
        problem = check_pair(name, ref_stats, cur_stats, config)
        if problem:
            problems[name] = problem
        elif column_type(name, ref_stats, cur_stats, config) == "num":
            numerical.append(name)
        else:
            categorical.append(name)
        cur.forget(name)
        ref.forget(name)
    _raise_problems(problems)
    return config.model_copy(
        update={"columns": columns, "numerical": numerical, "categorical": categorical}
    )


def _run_evidently(
    ref: Side, cur: Side, columns: list[str], config: DriftConfig, html_path: str | None
) -> DriftReport:
    import importlib

    resolved = _resolved_config(ref, cur, columns, config)
    module = importlib.import_module("guardflow.drift._evidently")
    report: DriftReport = module.run_evidently(
        ref.frame(columns), cur.frame(columns), resolved, html_path
    )
    return report
