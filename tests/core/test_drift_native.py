"""The native drift engine: known answers from scipy, Evidently's selection and drift rules.

Scores are checked against scipy called directly on the same values (the formulas Evidently
0.7.23 uses), the test selection on both sides of each of Evidently's switches (1,000 non-null
reference values; 2 and 5 distinct values; 10 distinct integers for type detection; 20 distinct
reference values for binning), and the tie rule of each test at its threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from guardflow.audit import MemoryAuditSink
from guardflow.drift import ColumnOverride, DriftConfig, DriftReport, check_drift
from guardflow.errors import ConfigurationError


def run(reference: Any, current: Any, config: DriftConfig | None = None) -> DriftReport:
    return check_drift(reference, current, config=config, audit_sink=MemoryAuditSink())


def one(reference: Any, current: Any, **config: Any) -> Any:
    """Check a single column ``x`` and return its :class:`ColumnDrift`."""
    report = run(
        pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), DriftConfig(**config)
    )
    return report.columns[0]


RNG = np.random.default_rng(20240501)
NORMAL_300 = RNG.normal(0, 1, 300)
NORMAL_250 = RNG.normal(0.25, 1.1, 250)
NORMAL_5000 = RNG.normal(0, 2, 5000)
NORMAL_4000 = RNG.normal(0.3, 2, 4000)


# --- known answers --------------------------------------------------------------------------------


def test_ks_is_scipys_two_sample_p_value() -> None:
    col = one(NORMAL_300, NORMAL_250)

    assert col.method == "ks"
    assert col.score == stats.ks_2samp(NORMAL_300, NORMAL_250).pvalue
    assert col.threshold == 0.05


def test_wasserstein_is_scipys_distance_over_the_reference_std() -> None:
    col = one(NORMAL_5000, NORMAL_4000)

    expected = stats.wasserstein_distance(NORMAL_5000, NORMAL_4000) / np.std(NORMAL_5000)
    assert col.method == "wasserstein"
    assert col.score == pytest.approx(expected, rel=1e-13)
    assert col.threshold == 0.1


def test_wasserstein_divides_by_at_least_0_001() -> None:
    reference = np.zeros(2000)
    current = np.arange(2000) / 1000.0

    col = one(reference, current)

    assert col.method == "wasserstein"
    assert col.score == pytest.approx(stats.wasserstein_distance(reference, current) / 0.001)


def test_jensenshannon_on_categories_uses_shares_over_the_union_of_values() -> None:
    reference = np.repeat(np.array(["a", "b", "c"]), [600, 300, 200])
    current = np.repeat(np.array(["a", "b", "d"]), [500, 300, 100])

    col = one(reference, current)

    # union sorted: a, b, c, d
    expected = distance.jensenshannon(
        np.array([600, 300, 200, 0]) / 1100, np.array([500, 300, 0, 100]) / 900
    )
    assert col.method == "jensenshannon"
    assert col.score == pytest.approx(expected, rel=1e-14)


def test_jensenshannon_on_many_numeric_values_uses_sturges_bins_of_both_samples() -> None:
    col = one(NORMAL_5000, NORMAL_4000, method="jensenshannon")

    edges = np.histogram_bin_edges(np.concatenate((NORMAL_5000, NORMAL_4000)), bins="sturges")
    expected = distance.jensenshannon(
        np.histogram(NORMAL_5000, edges)[0] / 5000, np.histogram(NORMAL_4000, edges)[0] / 4000
    )
    assert col.score == pytest.approx(expected, rel=1e-14)


def test_psi_fills_empty_bins_before_taking_logs() -> None:
    reference = np.repeat(np.array(["a", "b"]), [700, 300])
    current = np.repeat(np.array(["a", "c"]), [500, 500])

    col = one(reference, current, method="psi")

    ref = np.array([0.7, 0.3, 0.0001])  # a, b, c: an empty share becomes 0.0001
    cur = np.array([0.5, 0.0001, 0.5])
    assert col.score == pytest.approx(float(np.sum((ref - cur) * np.log(ref / cur))), rel=1e-14)
    assert col.drifted


def test_chisquare_scales_reference_counts_to_the_current_size() -> None:
    reference = np.repeat(np.array(["a", "b", "c"]), [100, 200, 300])
    current = np.repeat(np.array(["a", "b", "c"]), [60, 100, 140])

    col = one(reference, current)

    expected = stats.chisquare([60, 100, 140], np.array([100, 200, 300]) * 300 / 600).pvalue
    assert col.method == "chisquare"
    assert col.score == pytest.approx(expected, rel=1e-14)


def test_chisquare_2sample_is_a_test_of_homogeneity_on_the_two_by_k_table() -> None:
    reference = np.repeat(np.array(["a", "b", "c"]), [100, 200, 300])
    current = np.repeat(np.array(["a", "b", "c"]), [60, 100, 140])

    col = one(reference, current, method="chisquare_2sample")

    table = np.array([[100, 200, 300], [60, 100, 140]])
    assert col.score == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert col.score != pytest.approx(one(reference, current).score)


def test_z_compares_the_share_of_the_first_sorted_value() -> None:
    reference = np.repeat(np.array(["no", "yes"]), [200, 100])
    current = np.repeat(np.array(["no", "yes"]), [100, 100])

    col = one(reference, current)

    p1, p2 = 100 / 300, 100 / 200  # share of values other than "no"
    pooled = (p1 * 300 + p2 * 200) / 500
    z_stat = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 300 + 1 / 200))
    assert col.method == "z"
    assert col.score == pytest.approx(2 * (1 - stats.norm.cdf(abs(z_stat))), rel=1e-14)


def test_z_of_one_identical_value_on_both_sides_is_one() -> None:
    assert one(np.array(["a"] * 100), np.array(["a"] * 50)).score == 1.0


def test_hellinger_on_categories() -> None:
    reference = np.repeat(np.array(["a", "b"]), [600, 400])
    current = np.repeat(np.array(["a", "b"]), [200, 800])

    col = one(reference, current, method="hellinger")

    overlap = np.sqrt(0.6 * 0.2) + np.sqrt(0.4 * 0.8)
    assert col.score == pytest.approx(np.sqrt(1 - overlap), rel=1e-14)


def test_hellinger_on_numbers_bins_the_distinct_values() -> None:
    col = one(NORMAL_300, NORMAL_250, method="hellinger")

    keys = np.union1d(NORMAL_300, NORMAL_250)
    edges = np.histogram_bin_edges(keys, bins="sturges")
    h1 = np.histogram(NORMAL_300, edges, density=True)[0]
    h2 = np.histogram(NORMAL_250, edges, density=True)[0]
    width = (edges.max() - edges.min()) / (len(edges) - 1)
    expected = np.sqrt(1 - np.clip(np.sum(np.sqrt(h1 * h2)) * width, 0, 1))
    assert col.score == pytest.approx(expected, rel=1e-12)


# --- test selection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "distinct", "method"),
    [
        (1000, 6, "ks"),
        (1000, 5, "chisquare"),
        (1000, 3, "chisquare"),
        (1000, 2, "z"),
        (1001, 6, "wasserstein"),
        (1001, 5, "jensenshannon"),
        (1001, 2, "jensenshannon"),
    ],
)
def test_numeric_selection_by_reference_size_and_distinct_values(
    rows: int, distinct: int, method: str
) -> None:
    reference = (np.arange(rows) % distinct).astype(float)

    assert one(reference, reference[:400]).method == method


def test_the_size_switch_counts_non_null_reference_values() -> None:
    reference = np.concatenate((np.arange(1000) % 50, [np.nan] * 500)).astype(float)

    assert one(reference, reference).method == "ks"


def test_distinct_values_are_counted_over_both_samples() -> None:
    reference = (np.arange(300) % 3).astype(float)
    current = (np.arange(300) % 3 + 3).astype(float)  # 3 + 3 distinct values together

    assert one(reference, current).method == "ks"


@pytest.mark.parametrize(("rows", "method"), [(1000, "chisquare"), (1001, "jensenshannon")])
def test_categorical_selection_by_reference_size(rows: int, method: str) -> None:
    reference = np.array(["a", "b", "c"] * 400)[:rows]

    assert one(reference, reference).method == method


@pytest.mark.parametrize(("distinct", "column_type"), [(10, "cat"), (11, "num")])
def test_integers_are_categorical_up_to_ten_distinct_values(
    distinct: int, column_type: str
) -> None:
    values = np.arange(600) % distinct

    assert one(values, values).column_type == column_type


def test_floats_are_numerical_whatever_their_distinct_count() -> None:
    col = one(np.array([0.0, 1.0] * 100), np.array([0.0, 1.0] * 100))

    assert (col.column_type, col.method) == ("num", "z")


def test_integers_with_nulls_are_numerical_as_pandas_makes_them_floats() -> None:
    values = pd.array([1, 2, None] * 100, dtype="Int64")

    assert one(values, values).column_type == "num"


def test_strings_and_booleans_are_categorical() -> None:
    report = run(
        pd.DataFrame({"s": ["a", "b"] * 100, "b": [True, False] * 100}),
        pd.DataFrame({"s": ["a", "b"] * 50, "b": [True, True] * 50}),
    )

    assert [(c.column_type, c.method) for c in report.columns] == [("cat", "z"), ("cat", "z")]
    assert report.columns[1].drifted


def test_pandas_categories_of_numbers_are_categorical() -> None:
    values = pd.Categorical(np.arange(600.0) % 40)

    assert one(values, values).column_type == "cat"


def test_decimals_are_numbers() -> None:
    import decimal

    values = pd.Series([decimal.Decimal(i) / 4 for i in range(300)], dtype=object)

    assert (one(values, values).column_type, one(values, values).method) == ("num", "ks")


def test_the_type_is_detected_on_the_current_data_like_evidently() -> None:
    reference = np.arange(600) % 40  # 40 distinct integers: numerical on its own
    current = np.arange(600) % 4

    assert one(reference, current).column_type == "cat"


def test_forcing_a_type_overrides_detection() -> None:
    values = np.arange(600) % 4

    assert one(values, values, numerical=["x"]).column_type == "num"
    assert one(NORMAL_300, NORMAL_250, categorical=["x"]).method == "chisquare"


@pytest.mark.parametrize(("distinct", "binned"), [(20, False), (21, True)])
def test_numeric_binning_starts_above_twenty_distinct_reference_values(
    distinct: int, binned: bool
) -> None:
    reference = (np.arange(2000) % distinct).astype(float)
    current = (np.arange(1500) % (distinct + 3)).astype(float)

    col = one(reference, current, method="jensenshannon")

    if binned:
        edges = np.histogram_bin_edges(np.concatenate((reference, current)), bins="sturges")
        ref_p = np.histogram(reference, edges)[0] / reference.size
        cur_p = np.histogram(current, edges)[0] / current.size
    else:
        keys = np.arange(distinct + 3)
        ref_p = np.array([np.sum(reference == k) for k in keys]) / reference.size
        cur_p = np.array([np.sum(current == k) for k in keys]) / current.size
    assert col.score == pytest.approx(distance.jensenshannon(ref_p, cur_p), rel=1e-14)


# --- overrides and drift rules --------------------------------------------------------------------


def test_per_column_overrides_win_over_the_config_wide_choice() -> None:
    frame = pd.DataFrame({"a": NORMAL_300, "b": NORMAL_300})
    config = DriftConfig(
        method="psi", threshold=0.3, per_column={"b": ColumnOverride(method="hellinger")}
    )

    report = run(frame, frame, config)

    assert [(c.method, c.threshold) for c in report.columns] == [("psi", 0.3), ("hellinger", 0.3)]


def test_a_test_asked_for_on_the_wrong_column_type_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"'ks' does not apply to categorical column 'x'"):
        one(np.array(["a", "b"] * 50), np.array(["a", "b"] * 50), method="ks")


def test_default_chisquare_runs_on_numerical_columns_with_few_values() -> None:
    col = one(np.array([1.5, 2.5, 3.5] * 100), np.array([1.5, 2.5, 2.5] * 80), numerical=["x"])

    assert (col.column_type, col.method, col.drifted) == ("num", "chisquare", True)


def test_ks_drifts_at_a_p_value_equal_to_the_threshold() -> None:
    score = one(NORMAL_300, NORMAL_250).score

    assert one(NORMAL_300, NORMAL_250, threshold=score).drifted


def test_chisquare_does_not_drift_at_a_p_value_equal_to_the_threshold() -> None:
    reference = np.repeat(np.array(["a", "b", "c"]), [100, 200, 300])
    current = np.repeat(np.array(["a", "b", "c"]), [60, 100, 140])
    score = one(reference, current).score

    assert not one(reference, current, threshold=score).drifted


def test_distances_drift_at_a_score_equal_to_the_threshold() -> None:
    score = one(NORMAL_5000, NORMAL_4000).score

    assert one(NORMAL_5000, NORMAL_4000, threshold=score).drifted
    assert not one(NORMAL_5000, NORMAL_4000, threshold=score * 1.000001).drifted


@pytest.mark.parametrize(("drift_share", "dataset_drift"), [(0.5, True), (0.51, False)])
def test_the_dataset_drifts_when_the_drifted_share_reaches_drift_share(
    drift_share: float, dataset_drift: bool
) -> None:
    reference = pd.DataFrame({"a": NORMAL_300, "b": NORMAL_300})
    current = pd.DataFrame({"a": NORMAL_300 + 5, "b": NORMAL_300})

    report = run(reference, current, DriftConfig(drift_share=drift_share))

    assert (report.drifted_count, report.column_count, report.drifted_share) == (1, 2, 0.5)
    assert report.dataset_drift is dataset_drift
    assert report.drifted_columns == ["a"]
