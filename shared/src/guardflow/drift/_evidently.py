"""The Evidently engine: run Evidently 0.7's ``DataDriftPreset`` itself and map its results.

:func:`check_drift` delegates here when ``engine="evidently"``. It serves two purposes: a
cross-check of the native engine (the agreement tests run both on the same inputs) and Evidently's
own HTML report. The inputs arrive already resolved by :mod:`guardflow.drift.engine`: pandas frames
holding exactly ``config.columns``, and a config whose ``numerical`` and ``categorical`` lists name
every column, so Evidently never guesses a type the native engine did not choose.

The config maps onto ``DataDriftPreset`` one to one: each column's effective method and threshold
(:meth:`DriftConfig.override_for`) become ``per_column_method`` / ``per_column_threshold``, and
``drift_share`` is passed as is. Scores, thresholds and methods are read from the snapshot's
``ValueDrift`` metrics, the per-column verdicts from their tests, and the dataset verdict from
``DriftedColumnsCount`` and its test, so every figure in the report is Evidently's own. Methods are
reported by Evidently's registry names (``ks``, ``chisquare``, ``z``, ``wasserstein``,
``jensenshannon``, ``psi``, ``hellinger``), never by display names such as ``"K-S p_value"``.

Evidently 0.7.23 fails to import with pandas 3: that gives a :class:`ConfigurationError` saying
so, before Evidently is imported. Evidently's own warnings (scipy's divide-by-zero on unseen
categories, deprecations) are kept out of the caller's log.

Examples:
    >>> import pandas as pd
    >>> from guardflow.drift import DriftConfig
    >>> ref = pd.DataFrame({"x": [float(i % 50) for i in range(200)]})
    >>> cur = pd.DataFrame({"x": [float(i % 50) + 25 for i in range(200)]})
    >>> config = DriftConfig(columns=["x"], numerical=["x"])
    >>> run_evidently(ref, cur, config, None).columns[0].method  # doctest: +SKIP
    'ks'
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal

from guardflow._optional import require
from guardflow.drift.config import DriftConfig
from guardflow.drift.report import ColumnDrift, DriftReport
from guardflow.errors import ConfigurationError, DriftError, DriftInputError

__all__ = ["EVIDENTLY_METHODS", "run_evidently"]

EVIDENTLY_METHODS: tuple[str, ...] = (
    "ks",
    "chisquare",
    "z",
    "wasserstein",
    "jensenshannon",
    "psi",
    "hellinger",
)
"""Methods both engines have, by Evidently's registry names."""

_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
_DRIFTED_COUNT = "evidently:metric_v2:DriftedColumnsCount"


def run_evidently(
    reference_df: Any, current_df: Any, config: DriftConfig, html_path: str | None
) -> DriftReport:
    """Run Evidently's ``DataDriftPreset`` on the same inputs and return its results as ours.

    Args:
        reference_df: The reference, a pandas DataFrame holding ``config.columns``.
        current_df: The current data, a pandas DataFrame holding ``config.columns``.
        config: A resolved config: ``columns`` lists the compared columns, and ``numerical`` and
            ``categorical`` together give each of them its type (columns missing from both lists
            are typed from their pandas dtype: numbers other than booleans are numerical).
        html_path: Where to write Evidently's HTML report (local path or URI), or ``None``.

    Returns:
        A :class:`DriftReport` with ``engine="evidently"``, columns in ``config.columns`` order,
        and ``html_uri`` set when the HTML was written.

    Raises:
        ConfigurationError: pandas 3 is installed (Evidently 0.7 needs pandas < 3), a method is
            guardflow's own (``chisquare_2sample``) or does not apply to the column's type.
        MissingExtraError: Evidently is not installed (``guardflow[evidently]``).
        DriftInputError: An input is empty, a column is missing, entirely null (or NaN/inf) on
            one side, or holds non-numbers while typed numerical.
        OutputWriteError: The HTML report could not be written.
    """
    pd = _require_pandas()
    for side, frame in (("reference", reference_df), ("current", current_df)):
        if not isinstance(frame, pd.DataFrame):
            raise DriftInputError(
                f"the Evidently engine takes pandas DataFrames; the {side} is a "
                f"{type(frame).__name__} (check_drift converts any input for you)"
            )
    columns = list(config.columns) if config.columns is not None else list(current_df.columns)
    types = _column_types(reference_df, columns, config)
    methods, thresholds = _overrides(columns, types, config)
    nulls = {
        side: _check_side(pd, side, frame, columns, types)
        for side, frame in (("reference", reference_df), ("current", current_df))
    }
    ev = _import_evidently()
    preset_module = require("evidently.presets", "evidently")
    definition = ev.DataDefinition(
        numerical_columns=[c for c in columns if types[c] == "num"],
        categorical_columns=[c for c in columns if types[c] == "cat"],
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )
    preset = preset_module.DataDriftPreset(
        columns=columns,
        drift_share=config.drift_share,
        per_column_method=methods or None,
        per_column_threshold=thresholds or None,
    )
    with _quiet():
        try:
            snapshot = ev.Report([preset], include_tests=True).run(
                ev.Dataset.from_pandas(current_df[columns], data_definition=definition),
                ev.Dataset.from_pandas(reference_df[columns], data_definition=definition),
            )
            result = snapshot.dict()
        except (ValueError, TypeError, KeyError) as exc:
            raise DriftError(
                f"Evidently could not compute drift ({type(exc).__name__}); the native engine "
                "(engine='native') computes the same statistics with clearer input checks",
            ) from None
        html = snapshot.get_html_str(as_iframe=False) if html_path is not None else None
    rows = (len(reference_df), len(current_df))
    report = _to_report(result, columns, types, nulls, config, rows)
    if html is None or html_path is None:
        return report
    from guardflow.tables import safe_uri, write_bytes

    write_bytes(html.encode("utf-8"), html_path)
    return report.model_copy(update={"html_uri": safe_uri(html_path)})


def _require_pandas() -> ModuleType:
    pd = require("pandas", "evidently")
    major = str(pd.__version__).split(".", 1)[0]
    if major.isdigit() and int(major) >= 3:
        raise ConfigurationError(
            f"the Evidently engine needs pandas < 3 (Evidently 0.7 does not import with pandas 3) "
            f"and pandas {pd.__version__} is installed: install 'guardflow[evidently]' in an "
            "environment with pandas<3, or use engine='native', which computes the same statistics"
        )
    return pd


def _import_evidently() -> ModuleType:
    with _quiet():
        return require("evidently", "evidently")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep Evidently's and scipy's warnings out of the caller's log while Evidently runs."""
    np = require("numpy", "evidently")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _column_types(
    frame: Any, columns: list[str], config: DriftConfig
) -> dict[str, Literal["num", "cat"]]:
    pd = require("pandas", "evidently")
    numerical, categorical = set(config.numerical), set(config.categorical)
    types: dict[str, Literal["num", "cat"]] = {}
    for column in columns:
        if column in numerical:
            types[column] = "num"
        elif column in categorical or column not in frame.columns:
            types[column] = "cat"
        else:
            dtype = frame[column].dtype
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            types[column] = "num" if numeric else "cat"
    return types


def _overrides(
    columns: list[str], types: dict[str, Literal["num", "cat"]], config: DriftConfig
) -> tuple[dict[str, str], dict[str, float]]:
    """Map each column's effective method/threshold onto Evidently's per-column options."""
    methods: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for column in columns:
        override = config.override_for(column)
        if override.method is not None:
            _check_method(override.method, column, types[column])
            methods[column] = override.method
        if override.threshold is not None:
            thresholds[column] = override.threshold
    return methods, thresholds


def _check_method(method: str, column: str, column_type: Literal["num", "cat"]) -> None:
    if method not in EVIDENTLY_METHODS:
        raise ConfigurationError(
            f"method {method!r} (column {column!r}) is guardflow's own and Evidently does not "
            "have it: use engine='native', or one of " + ", ".join(EVIDENTLY_METHODS)
        )
    numerical_only, categorical_only = {"ks", "wasserstein"}, {"chisquare", "z"}
    if (column_type == "num" and method in categorical_only) or (
        column_type == "cat" and method in numerical_only
    ):
        kind = "numerical" if column_type == "num" else "categorical"
        raise ConfigurationError(
            f"Evidently's {method!r} test does not apply to {kind} column {column!r}: choose "
            f"another method, or list the column under "
            f"{'categorical' if column_type == 'num' else 'numerical'} in the drift config"
        )


def _check_side(
    pd: ModuleType,
    side: str,
    frame: Any,
    columns: list[str],
    types: dict[str, Literal["num", "cat"]],
) -> dict[str, int]:
    """Refuse what Evidently answers with a bare ValueError; return each column's null count.

    Messages name columns, never values.
    """
    if len(frame) == 0:
        raise DriftInputError(f"the {side} data has no rows: nothing to compare")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DriftInputError(f"the {side} data lacks column(s) {missing}", columns=missing)
    valid = {c: _valid(pd, frame[c]) for c in columns}
    empty = [c for c in columns if valid[c].empty]
    if empty:
        raise DriftInputError(
            f"column(s) {empty} hold only nulls, NaN or infinities in the {side} data: "
            "drop them from the config or fix the data",
            columns=empty,
        )
    wrong = [
        c for c in columns if types[c] == "num" and not pd.api.types.is_numeric_dtype(valid[c])
    ]
    if wrong:
        raise DriftInputError(
            f"column(s) {wrong} are typed numerical but hold non-numbers in the {side} "
            "data: list them under categorical in the drift config",
            columns=wrong,
        )
    return {c: len(frame) - len(valid[c]) for c in columns}


def _valid(pd: ModuleType, series: Any) -> Any:
    """The values Evidently tests: nulls, NaN and infinities dropped (as Evidently drops them)."""
    np = require("numpy", "evidently")
    with _quiet():
        return series.replace([-np.inf, np.inf], np.nan).dropna()


def _to_report(
    result: dict[str, Any],
    columns: list[str],
    types: dict[str, Literal["num", "cat"]],
    nulls: dict[str, dict[str, int]],
    config: DriftConfig,
    rows: tuple[int, int],
) -> DriftReport:
    """Map ``snapshot.dict()`` (metrics and tests) onto a :class:`DriftReport`."""
    status = {
        test["metric_config"]["metric_id"]: test["status"]
        for test in result["tests"]
        if test.get("metric_config")
    }
    by_column: dict[str, ColumnDrift] = {}
    count = share = None
    dataset_drift = False
    for metric in result["metrics"]:
        kind = metric["config"]["type"]
        if kind == _DRIFTED_COUNT:
            count, share = metric["value"]["count"], metric["value"]["share"]
            dataset_drift = _status_name(status.get(metric["id"])) == "FAIL"
        elif kind == _VALUE_DRIFT:
            column = metric["config"]["column"]
            by_column[column] = ColumnDrift(
                column=column,
                column_type=types[column],
                method=_registry_name(metric["config"]["method"], types[column]),
                score=float(metric["value"]),
                threshold=float(metric["config"]["threshold"]),
                drifted=_status_name(status.get(metric["id"])) == "FAIL",
                reference_nulls=nulls["reference"][column],
                current_nulls=nulls["current"][column],
            )
    if count is None or share is None or set(by_column) != set(columns):
        raise DriftError("Evidently's snapshot lacks drift results for some columns")
    return DriftReport(
        columns=[by_column[c] for c in columns],
        drifted_count=int(count),
        column_count=len(columns),
        drifted_share=float(share),
        drift_share=config.drift_share,
        dataset_drift=dataset_drift,
        engine="evidently",
        reference_rows=rows[0],
        current_rows=rows[1],
    )


def _status_name(status: Any) -> str:
    return str(getattr(status, "value", status)).upper()


def _registry_name(method: str, column_type: Literal["num", "cat"]) -> str:
    """Evidently reports auto-chosen tests by display name; return the registry name."""
    if method in EVIDENTLY_METHODS:
        return method
    registry = require("evidently.legacy.calculations.stattests.registry", "evidently")
    core = require("evidently.legacy.core", "evidently")
    # Default tests ignore the registry's allowed types (a numerical column with few values gets
    # the categorical-only chi-square), so look the display name up under both types.
    kinds = (core.ColumnType.Numerical, core.ColumnType.Categorical)
    for name in EVIDENTLY_METHODS:
        for kind in kinds:
            with contextlib.suppress(Exception):
                if registry.get_registered_stattest(name, kind).display_name == method:
                    return name
    return method
