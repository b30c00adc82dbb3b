"""The native engine and Evidently agree: same tests, same scores (to 1e-9), same verdicts.

Each case runs :func:`check_drift` twice on the same inputs, once with ``engine="native"`` and once
with ``engine="evidently"`` (Evidently 0.7.23 itself), and requires per column the same type,
method, threshold, drifted flag and null counts, ``|score difference| <= 1e-9``, and the same
dataset verdict. The cases cover numeric and categorical columns, reference sizes on both sides
of Evidently's 1,000-row switch (which counts non-null values), integers with few distinct values
around Evidently's thresholds (2 and 5 distinct values for the test, 20 in the reference for the
binning), nulls, NaN and infinities, unseen categories, booleans and strings, every test both
engines have when asked for by name, thresholds and their tie rules, constant columns, other
input types, and a saved reference profile. Data is seeded numpy.

No known disagreement. (One was found while these tests were written and fixed in the native
engine: Evidently's default chi-square/z-test on a numerical column with at most 5 distinct
values was refused as "categorical-only"; the integer and constant-column cases cover it.)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.drift import (
    ColumnDrift,
    ColumnOverride,
    DriftConfig,
    DriftReport,
    build_profile,
    check_drift,
)

TOLERANCE = 1e-9
NUM_METHODS = ["ks", "wasserstein", "jensenshannon", "psi", "hellinger"]
CAT_METHODS = ["chisquare", "z", "jensenshannon", "psi", "hellinger"]


@pytest.fixture(scope="module", autouse=True)
def evidently_loaded() -> None:
    """Import Evidently once for the module (5-11 s) instead of in the first case."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import evidently.presets  # noqa: F401


def run_both(
    reference: Any, current: Any, config: DriftConfig | None = None
) -> tuple[DriftReport, DriftReport]:
    """The same check through both engines."""
    native = check_drift(reference, current, config=config, audit_sink=MemoryAuditSink())
    theirs = check_drift(
        reference, current, config=config, engine="evidently", audit_sink=MemoryAuditSink()
    )
    return native, theirs


def assert_agree(native: DriftReport, theirs: DriftReport) -> None:
    """Same columns, types, methods, thresholds, verdicts, null counts; scores within 1e-9."""
    assert (native.engine, theirs.engine) == ("native", "evidently")

    def nulls(c: ColumnDrift) -> tuple[int | None, int | None]:
        return c.reference_nulls, c.current_nulls

    def facts(report: DriftReport) -> list[tuple[Any, ...]]:
        return [
            (c.column, c.column_type, c.method, c.threshold, c.drifted, *nulls(c))
            for c in report.columns
        ]

    assert facts(native) == facts(theirs)
    for ours, evidently in zip(native.columns, theirs.columns, strict=True):
        if math.isnan(ours.score) or math.isnan(evidently.score):
            assert math.isnan(ours.score) and math.isnan(evidently.score), ours.column
        else:
            diff = abs(ours.score - evidently.score)
            assert diff <= TOLERANCE, f"{ours.column} ({ours.method}): |diff| = {diff:.3g}"
    assert (native.drifted_count, native.column_count, native.dataset_drift) == (
        theirs.drifted_count,
        theirs.column_count,
        theirs.dataset_drift,
    )
    assert native.drifted_share == pytest.approx(theirs.drifted_share, abs=1e-12)
    assert (native.reference_rows, native.current_rows) == (
        theirs.reference_rows,
        theirs.current_rows,
    )


def check(reference: Any, current: Any, config: DriftConfig | None = None) -> DriftReport:
    """Run both engines, assert they agree, return the native report."""
    native, theirs = run_both(reference, current, config)
    assert_agree(native, theirs)
    return native


def methods(report: DriftReport) -> dict[str, str]:
    return {c.column: c.method for c in report.columns}


def mixed(n_ref: int, n_cur: int = 400, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two numeric columns (one shifted) and two string categoricals (one shifted)."""
    rng = np.random.default_rng(seed)
    cities = np.array(["north", "south", "east", "west", "centre"])
    reference = pd.DataFrame(
        {
            "num_shift": rng.normal(0.0, 1.0, n_ref),
            "num_same": rng.gamma(2.0, 3.0, n_ref),
            "cat_shift": rng.choice(cities, n_ref, p=[0.3, 0.3, 0.2, 0.1, 0.1]),
            "cat_same": rng.choice(cities[:3], n_ref),
        }
    )
    current = pd.DataFrame(
        {
            "num_shift": rng.normal(0.4, 1.1, n_cur),
            "num_same": rng.gamma(2.0, 3.0, n_cur),
            "cat_shift": rng.choice(cities, n_cur, p=[0.15, 0.3, 0.2, 0.15, 0.2]),
            "cat_same": rng.choice(cities[:3], n_cur),
        }
    )
    return reference, current


def integers(
    n_ref: int, n_unique: int, *, n_cur: int = 300, seed: int = 2, ref_unique: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Integer column with exactly ``n_unique`` distinct values over both sides."""
    rng = np.random.default_rng(seed)
    ref_unique = n_unique if ref_unique is None else ref_unique
    reference = rng.permutation(np.arange(n_ref) % ref_unique)
    weights = np.linspace(1.0, 2.0, n_unique)  # the current leans towards high values
    current = rng.choice(n_unique, n_cur, p=weights / weights.sum())
    current[:n_unique] = np.arange(n_unique)  # every value present at least once
    return pd.DataFrame({"k": reference}), pd.DataFrame({"k": rng.permutation(current)})


# --- sizes and the 1,000-row switch -------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_ref", "expected"),
    [
        (200, ("ks", "chisquare")),
        (1000, ("ks", "chisquare")),
        (1001, ("wasserstein", "jensenshannon")),
        (5000, ("wasserstein", "jensenshannon")),
    ],
)
def test_numeric_and_categorical_columns_agree_on_both_sides_of_the_switch(
    n_ref: int, expected: tuple[str, str]
) -> None:
    report = check(*mixed(n_ref))

    num, cat = expected
    assert methods(report) == {
        "num_shift": num,
        "num_same": num,
        "cat_shift": cat,
        "cat_same": cat,
    }


@pytest.mark.parametrize(
    ("n_ref", "nulls", "expected"), [(1100, 150, "ks"), (1250, 200, "wasserstein")]
)
def test_the_switch_counts_non_null_reference_values(n_ref: int, nulls: int, expected: str) -> None:
    reference, current = mixed(n_ref)
    reference.loc[: nulls - 1, "num_shift"] = np.nan

    report = check(reference[["num_shift"]], current[["num_shift"]])

    assert methods(report) == {"num_shift": expected}


# --- integers with few distinct values ----------------------------------------------------------

FORCED_NUM_METHOD = {
    (2, False): "z",
    (3, False): "chisquare",
    (5, False): "chisquare",
    (6, False): "ks",
    (21, False): "ks",
    (2, True): "jensenshannon",
    (3, True): "jensenshannon",
    (5, True): "jensenshannon",
    (6, True): "wasserstein",
    (21, True): "wasserstein",
}


@pytest.mark.parametrize("n_ref", [300, 2000])
@pytest.mark.parametrize("n_unique", [2, 3, 5, 6, 21])
def test_integers_forced_numerical_agree_around_the_unique_count_thresholds(
    n_unique: int, n_ref: int
) -> None:
    config = DriftConfig(numerical=["k"])

    report = check(*integers(n_ref, n_unique), config)

    assert methods(report) == {"k": FORCED_NUM_METHOD[(n_unique, n_ref > 1000)]}


@pytest.mark.parametrize("n_ref", [300, 2000])
@pytest.mark.parametrize("n_unique", [2, 3, 5, 6, 21])
def test_integers_typed_by_detection_agree(n_unique: int, n_ref: int) -> None:
    report = check(*integers(n_ref, n_unique))

    assert report.columns[0].column_type == ("num" if n_unique > 10 else "cat")


@pytest.mark.parametrize("method", ["jensenshannon", "psi", "hellinger"])
@pytest.mark.parametrize("ref_unique", [20, 21])
def test_binning_agrees_on_both_sides_of_twenty_reference_values(
    ref_unique: int, method: str
) -> None:
    # the current has values the reference never had: the union decides the per-value shares
    reference, current = integers(600, 25, ref_unique=ref_unique)
    config = DriftConfig(numerical=["k"], method=method)  # type: ignore[arg-type]

    check(reference, current, config)


# --- nulls, NaN, infinities, constants ----------------------------------------------------------


@pytest.mark.parametrize("n_ref", [300, 3000])
def test_nulls_nan_and_infinities_agree(n_ref: int) -> None:
    reference, current = mixed(n_ref)
    rng = np.random.default_rng(3)
    for frame in (reference, current):
        rows = rng.choice(len(frame), 40, replace=False)
        frame.loc[rows[:20], "num_shift"] = np.nan
        frame.loc[rows[20:30], "num_shift"] = np.inf
        frame.loc[rows[30:], "num_shift"] = -np.inf
        frame.loc[rows[:25], "cat_shift"] = None

    report = check(reference, current)

    assert report.columns[0].reference_nulls == 40


@pytest.mark.parametrize("n_ref", [300, 3000])
@pytest.mark.parametrize("values", [(1.5, 1.5), (1.5, 2.5)], ids=["same", "moved"])
def test_constant_numeric_columns_agree(n_ref: int, values: tuple[float, float]) -> None:
    reference = pd.DataFrame({"x": np.full(n_ref, values[0])})
    current = pd.DataFrame({"x": np.full(250, values[1])})

    check(reference, current, DriftConfig(numerical=["x"]))


@pytest.mark.parametrize("method", [None, *NUM_METHODS])
def test_a_constant_reference_against_a_spread_current_agrees(method: str | None) -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"x": np.zeros(400)})
    current = pd.DataFrame({"x": rng.normal(0.0, 1.0, 300)})

    check(reference, current, DriftConfig(method=method))  # type: ignore[arg-type]


@pytest.mark.parametrize("n_ref", [300, 3000])
def test_a_single_category_on_both_sides_agrees(n_ref: int) -> None:
    reference = pd.DataFrame({"c": ["only"] * n_ref})
    current = pd.DataFrame({"c": ["only"] * 200})

    report = check(reference, current)

    assert report.columns[0].drifted is False


# --- categories: unseen, booleans, strings ------------------------------------------------------


@pytest.mark.parametrize("method", [None, *CAT_METHODS])
@pytest.mark.parametrize("n_ref", [300, 3000])
def test_unseen_and_vanished_categories_agree(n_ref: int, method: str | None) -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"c": rng.choice(["a", "b", "c", "gone"], n_ref)})
    current = pd.DataFrame({"c": rng.choice(["a", "b", "c", "new1", "new2"], 300)})

    check(reference, current, DriftConfig(method=method))  # type: ignore[arg-type]


@pytest.mark.parametrize("n_ref", [300, 3000])
@pytest.mark.parametrize("share", [0.5, 0.3])
def test_boolean_columns_agree(n_ref: int, share: float) -> None:
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"b": rng.random(n_ref) < 0.5})
    current = pd.DataFrame({"b": rng.random(300) < share})

    report = check(reference, current)

    assert report.columns[0].column_type == "cat"


def test_booleans_with_nulls_agree() -> None:
    rng = np.random.default_rng(7)
    reference = pa.table(
        {
            "b": pa.array(
                [None if i % 9 == 0 else bool(v) for i, v in enumerate(rng.random(500) < 0.5)],
                pa.bool_(),
            )
        }
    )
    current = pa.table(
        {
            "b": pa.array(
                [None if i % 7 == 0 else bool(v) for i, v in enumerate(rng.random(300) < 0.4)],
                pa.bool_(),
            )
        }
    )

    report = check(reference, current)

    assert (report.columns[0].reference_nulls, report.columns[0].current_nulls) == (56, 43)


@pytest.mark.parametrize("n_ref", [300, 3000])
def test_integer_codes_forced_categorical_agree(n_ref: int) -> None:
    reference, current = integers(n_ref, 21)

    report = check(reference, current, DriftConfig(categorical=["k"]))

    assert report.columns[0].column_type == "cat"


# --- every test by name, thresholds, tie rules --------------------------------------------------


@pytest.mark.parametrize("n_ref", [300, 3000])
@pytest.mark.parametrize("method", NUM_METHODS)
def test_each_numeric_test_asked_for_by_name_agrees(method: str, n_ref: int) -> None:
    reference, current = mixed(n_ref)
    config = DriftConfig(per_column={"num_shift": ColumnOverride(method=method)})  # type: ignore[arg-type]

    report = check(reference, current, config)

    assert report.columns[0].method == method


@pytest.mark.parametrize("n_ref", [300, 3000])
@pytest.mark.parametrize("method", CAT_METHODS)
def test_each_categorical_test_asked_for_by_name_agrees(method: str, n_ref: int) -> None:
    reference, current = mixed(n_ref)
    config = DriftConfig(per_column={"cat_shift": ColumnOverride(method=method)})  # type: ignore[arg-type]

    report = check(reference, current, config)

    assert methods(report)["cat_shift"] == method


@pytest.mark.parametrize("n_ref", [300, 3000])
def test_thresholds_and_drift_share_agree(n_ref: int) -> None:
    reference, current = mixed(n_ref)
    config = DriftConfig(
        threshold=0.2,
        per_column={
            "num_shift": ColumnOverride(threshold=0.01),
            "cat_same": ColumnOverride(method="psi", threshold=0.001),
        },
        drift_share=0.3,
    )

    report = check(reference, current, config)

    assert [c.threshold for c in report.columns] == [0.01, 0.2, 0.2, 0.001]


@pytest.mark.parametrize(
    ("method", "threshold"),
    [("ks", 1.0), ("z", 1.0), ("chisquare", 1.0), ("wasserstein", 0.0), ("psi", 0.0)],
)
def test_tie_rules_agree_when_the_score_equals_the_threshold(method: str, threshold: float) -> None:
    # identical samples give exact scores (p = 1, distance 0): K-S drifts at p <= t, other
    # p-values at p < t, distances at >= t
    columns = {
        "z": np.repeat(np.array(["a", "b"]), 100),
        "chisquare": np.repeat(np.array(["a", "b", "c"]), 100),
    }
    frame = pd.DataFrame({"x": columns.get(method, np.repeat(np.arange(8.0), 40))})
    config = DriftConfig(method=method, threshold=threshold)  # type: ignore[arg-type]

    report = check(frame, frame.copy(), config)

    assert report.columns[0].drifted is (method in {"ks", "wasserstein", "psi"})


# --- other inputs -------------------------------------------------------------------------------


def test_polars_frames_with_nullable_integers_agree() -> None:
    import polars as pl

    rng = np.random.default_rng(8)
    ref_values = [None if i % 11 == 0 else int(v) for i, v in enumerate(rng.integers(0, 40, 500))]
    cur_values = [None if i % 5 == 0 else int(v) for i, v in enumerate(rng.integers(5, 45, 300))]
    reference = pl.DataFrame({"k": ref_values}, schema={"k": pl.Int64})
    current = pl.DataFrame({"k": cur_values}, schema={"k": pl.Int64})

    check(reference, current)


@pytest.mark.parametrize("n_ref", [300, 3000])
def test_a_saved_reference_profile_agrees_with_evidently_on_the_raw_reference(
    n_ref: int, tmp_path: Any
) -> None:
    reference, current = mixed(n_ref)
    reference.loc[:30, "num_same"] = np.nan
    path = str(tmp_path / "reference.gfprofile")
    build_profile(reference).save(path)

    from_profile = check_drift(path, current, audit_sink=MemoryAuditSink())
    theirs = check_drift(reference, current, engine="evidently", audit_sink=MemoryAuditSink())

    assert_agree(from_profile, theirs)
