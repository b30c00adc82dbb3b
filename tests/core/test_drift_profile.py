"""Reference profiles, the report's serialisations and the config file.

A profile saved and loaded is equal to the one built, and checking against it (object or URI)
gives exactly the scores of checking against the raw reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.drift import (
    ColumnOverride,
    DriftConfig,
    DriftReport,
    ReferenceProfile,
    build_profile,
    check_drift,
)
from guardflow.errors import ConfigurationError, DriftInputError


def run(reference: Any, current: Any, **kwargs: Any) -> DriftReport:
    return check_drift(reference, current, audit_sink=MemoryAuditSink(), **kwargs)


def frames(n_ref: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(n_ref)

    def frame(n: int, shift: float) -> pd.DataFrame:
        amount = rng.normal(shift, 1.0, n)
        amount[:7] = np.nan
        amount[7] = np.inf
        return pd.DataFrame(
            {
                "amount": amount,
                "items": rng.integers(0, 6, n),
                "score": rng.integers(0, 500, n),
                "country": rng.choice(["fr", "de", "it", None], n),
                "flag": rng.random(n) < 0.3 + shift / 10,
            }
        )

    return frame(n_ref, 0.0), frame(700, 0.4)


# --- profiles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_ref", [400, 3000])
def test_a_profile_gives_the_scores_of_the_raw_reference(n_ref: int, tmp_path: Path) -> None:
    reference, current = frames(n_ref)
    path = str(tmp_path / "reference.gfprofile")
    build_profile(reference).save(path)

    raw = run(reference, current)
    from_object = run(build_profile(reference), current)
    from_uri = run(path, current)

    assert from_object == raw
    assert from_uri == raw


def test_a_profile_round_trips_through_its_file(tmp_path: Path) -> None:
    reference, _ = frames(500)
    profile = build_profile(reference)
    path = tmp_path / "nested" / "reference.gfprofile"

    profile.save(path)
    loaded = ReferenceProfile.load(path)

    assert loaded == profile
    assert loaded.columns["amount"].nulls == 8
    assert loaded.columns["country"].kind == "string"
    assert loaded.created_at == profile.created_at


def test_a_profile_round_trips_through_an_fsspec_uri() -> None:
    reference, _ = frames(300)
    profile = build_profile(reference)
    uri = "memory://drift-profiles/reference.gfprofile"

    profile.save(uri)

    assert ReferenceProfile.load(uri) == profile


def test_a_changed_profile_is_not_equal() -> None:
    reference, _ = frames(300)
    changed = reference.copy()
    changed.loc[100, "amount"] += 1.0

    assert build_profile(changed) != build_profile(reference)


def test_a_profile_holds_the_sorted_values_and_value_counts() -> None:
    profile = build_profile(pd.DataFrame({"x": [3.0, None, 1.0, 2.0], "c": ["b", "a", "b", None]}))

    x, c = profile.columns["x"], profile.columns["c"]
    assert x.values is not None and x.values.tolist() == [1.0, 2.0, 3.0]
    assert (x.nulls, profile.rows) == (1, 4)
    assert c.categories.to_pylist() == ["a", "b"]
    assert c.counts is not None and c.counts.tolist() == [1, 2]


def test_build_profile_keeps_only_config_columns() -> None:
    reference, _ = frames(300)

    profile = build_profile(reference, DriftConfig(columns=["items", "flag"]))

    assert list(profile.columns) == ["items", "flag"]


def test_a_column_missing_from_the_profile_is_named() -> None:
    reference, current = frames(300)
    profile = build_profile(reference, DriftConfig(columns=["items"]))

    with pytest.raises(DriftInputError, match=r"missing from the reference profile: \['amount'\]"):
        run(profile, current, config=DriftConfig(columns=["items", "amount"]))


def test_a_profile_must_be_saved_with_its_suffix(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\.gfprofile"):
        build_profile([{"x": 1.0}]).save(tmp_path / "reference.parquet")


def test_a_parquet_file_that_is_not_a_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.gfprofile"
    pq.write_table(pa.table({"x": [1.0]}), path)

    with pytest.raises(DriftInputError, match="is not a guardflow drift profile"):
        ReferenceProfile.load(path)


def test_a_missing_profile_is_a_drift_input_error(tmp_path: Path) -> None:
    with pytest.raises(DriftInputError, match="does not exist"):
        run(str(tmp_path / "missing.gfprofile"), [{"x": 1.0}])


def test_a_profile_rebuilds_the_reference_distribution_for_evidently() -> None:
    reference, _ = frames(300)
    profile = build_profile(reference)

    rebuilt = profile.to_pandas(["amount", "items", "country", "flag"])

    for name in ["amount", "items", "country", "flag"]:
        pd.testing.assert_series_equal(
            rebuilt[name].value_counts(dropna=False).sort_index(),
            reference[name].replace([np.inf], np.nan).value_counts(dropna=False).sort_index(),
        )
    assert rebuilt["items"].dtype == np.int64 and rebuilt["flag"].dtype == bool


# --- report ---------------------------------------------------------------------------------------


def test_the_report_round_trips_through_json() -> None:
    reference, current = frames(400)
    report = run(reference, current)

    assert DriftReport.from_json(report.to_json()) == report
    assert json.loads(report.to_json()) == report.to_dict()


def test_cli_dict_has_exactly_the_cli_keys() -> None:
    reference, current = frames(400)

    shape = run(reference, current).cli_dict()

    assert set(shape) == {"dataset_drift", "drifted_share", "columns"}
    assert all(
        set(col) == {"column", "method", "score", "threshold", "drifted"}
        for col in shape["columns"]
    )


def test_to_text_lists_every_column_and_the_verdict() -> None:
    reference, current = frames(400)
    report = run(reference, current)

    text = report.to_text()

    assert text.startswith(f"dataset: {'DRIFT' if report.dataset_drift else 'no drift'}")
    assert all(f"\n{c.column} " in text for c in report.columns)


# --- config ---------------------------------------------------------------------------------------


def test_config_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "drift.yaml"
    path.write_text(
        "columns: [a, b]\nthreshold: 0.2\nper_column:\n  b: {method: chisquare_2sample}\n"
    )

    config = DriftConfig.from_yaml(path)

    assert config.columns == ["a", "b"]
    assert config.override_for("b") == ColumnOverride(method="chisquare_2sample", threshold=0.2)


def test_an_unknown_method_in_yaml_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "drift.yaml"
    path.write_text("method: anderson\n")

    with pytest.raises(ConfigurationError, match=r"invalid drift config .*method"):
        DriftConfig.from_yaml(path)


def test_a_column_cannot_be_both_categorical_and_numerical() -> None:
    with pytest.raises(ValueError, match=r"both categorical and numerical: \['a'\]"):
        DriftConfig(categorical=["a"], numerical=["a"])
