"""The Evidently engine: Evidently 0.7 itself runs on our inputs and its results become ours.

Every test runs the real Evidently (the ``evidently`` extra is installed in every environment).
Evidently takes 5-11 s to import, paid once by the module-scoped ``evidently_loaded`` fixture.
"""

from __future__ import annotations

import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.drift import ColumnOverride, DriftConfig, check_drift
from guardflow.drift._evidently import run_evidently
from guardflow.errors import ConfigurationError, DriftInputError, MissingExtraError

PLANTED = "tok-PLANTED-7f3a"  # a category value that must never reach a report or an error


@pytest.fixture(scope="module", autouse=True)
def evidently_loaded() -> None:
    """Import Evidently once for the module (5-11 s), outside any timed or captured test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import evidently.presets  # noqa: F401


def frames(n_ref: int = 300, n_cur: int = 250, seed: int = 9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A numerical column that shifts, one that does not, and two categoricals."""
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {
            "shifted": rng.normal(0.0, 1.0, n_ref),
            "stable": rng.normal(5.0, 2.0, n_ref),
            "city": rng.choice(["a", "b", "c", PLANTED], n_ref),
            "flag": rng.random(n_ref) < 0.4,
        }
    )
    current = pd.DataFrame(
        {
            "shifted": rng.normal(0.8, 1.0, n_cur),
            "stable": rng.normal(5.0, 2.0, n_cur),
            "city": rng.choice(["a", "b", "c", PLANTED], n_cur),
            "flag": rng.random(n_cur) < 0.4,
        }
    )
    return reference, current


def config(**kwargs: Any) -> DriftConfig:
    """A resolved config, as check_drift hands it to the engine."""
    kwargs.setdefault("columns", ["shifted", "stable", "city", "flag"])
    kwargs.setdefault("numerical", ["shifted", "stable"])
    kwargs.setdefault("categorical", ["city", "flag"])
    return DriftConfig(**kwargs)


@pytest.fixture
def memory_fs() -> Iterator[Any]:
    fs = fsspec.filesystem("memory")
    root = f"/guardflow-test-{uuid.uuid4().hex[:8]}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


# --- HTML -----------------------------------------------------------------------------------------


def test_the_html_report_is_written_to_a_local_path(tmp_path: Path) -> None:
    reference, current = frames()
    target = tmp_path / "reports" / "drift.html"

    report = run_evidently(reference, current, config(), str(target))

    assert report.html_uri == str(target)
    html = target.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "Value Drift for column shifted" in html  # Evidently's own test widgets


def test_the_html_report_is_written_to_a_uri(memory_fs: Any) -> None:
    fs, root = memory_fs
    reference, current = frames()
    uri = f"memory://{root}/drift.html"

    report = run_evidently(reference, current, config(), uri)

    assert report.html_uri == uri
    assert b"<html" in fs.cat_file(f"{root}/drift.html")[:2000].lower()


def test_check_drift_runs_the_evidently_engine_and_writes_its_html(tmp_path: Path) -> None:
    reference, current = frames()
    target = tmp_path / "drift.html"

    report = check_drift(
        reference,
        current,
        engine="evidently",
        html_path=str(target),
        audit_sink=MemoryAuditSink(),
    )

    assert (report.engine, report.html_uri) == ("evidently", str(target))
    assert report.reference_fingerprint and report.reference_fingerprint.startswith("sha256:")
    assert target.stat().st_size > 0


def test_no_html_is_written_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    reference, current = frames()

    report = run_evidently(reference, current, config(), None)

    assert report.html_uri is None
    assert list(tmp_path.iterdir()) == []


# --- results --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_ref", "expected"),
    [
        (300, {"shifted": "ks", "stable": "ks", "city": "chisquare", "flag": "z"}),
        (
            1500,
            {
                "shifted": "wasserstein",
                "stable": "wasserstein",
                "city": "jensenshannon",
                "flag": "jensenshannon",
            },
        ),
    ],
)
def test_auto_chosen_tests_are_named_by_evidently_registry_names(
    n_ref: int, expected: dict[str, str]
) -> None:
    reference, current = frames(n_ref=n_ref)

    report = run_evidently(reference, current, config(), None)

    assert {c.column: c.method for c in report.columns} == expected


def test_columns_keep_config_order_types_and_row_counts() -> None:
    reference, current = frames(n_ref=300, n_cur=250)
    order = ["flag", "stable", "city", "shifted"]

    report = run_evidently(reference, current, config(columns=order), None)

    assert [c.column for c in report.columns] == order
    assert [c.column_type for c in report.columns] == ["cat", "num", "cat", "num"]
    assert (report.engine, report.reference_rows, report.current_rows) == ("evidently", 300, 250)


def test_the_shifted_column_drifts_and_the_stable_one_does_not() -> None:
    reference, current = frames()

    report = run_evidently(reference, current, config(), None)

    assert "shifted" in report.drifted_columns
    assert "stable" not in report.drifted_columns


def test_nulls_nan_and_infinities_are_counted_and_dropped() -> None:
    reference, current = frames()
    reference.loc[[0, 1, 2], "shifted"] = np.nan
    reference.loc[[3, 4], "shifted"] = [np.inf, -np.inf]
    current.loc[[0], "city"] = None

    report = run_evidently(reference, current, config(), None)
    by_name = {c.column: c for c in report.columns}

    assert (by_name["shifted"].reference_nulls, by_name["shifted"].current_nulls) == (5, 0)
    assert (by_name["city"].reference_nulls, by_name["city"].current_nulls) == (0, 1)
    assert np.isfinite(by_name["shifted"].score)


def test_the_report_holds_no_data_values() -> None:
    reference, current = frames()

    report = run_evidently(reference, current, config(), None)

    assert PLANTED not in report.to_json()
    assert PLANTED not in report.to_text()


def test_evidently_warnings_stay_out_of_the_callers_log(capfd: pytest.CaptureFixture[str]) -> None:
    reference, current = frames()
    current.loc[:10, "city"] = "unseen"  # chi-square divides by zero on unseen categories

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_evidently(reference, current, config(), None)

    assert {c.column: c.score for c in report.columns}["city"] == 0.0
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr() == ("", "")


# --- config mapping -------------------------------------------------------------------------------


def test_a_config_wide_method_and_threshold_apply_to_every_column() -> None:
    reference, current = frames()

    report = run_evidently(reference, current, config(method="psi", threshold=0.3), None)

    assert {(c.method, c.threshold) for c in report.columns} == {("psi", 0.3)}


def test_a_per_column_override_beats_the_config_wide_choice() -> None:
    reference, current = frames()
    overrides = {"city": ColumnOverride(method="jensenshannon", threshold=0.05)}

    report = run_evidently(
        reference, current, config(method="psi", threshold=0.3, per_column=overrides), None
    )
    by_name = {c.column: c for c in report.columns}

    assert (by_name["city"].method, by_name["city"].threshold) == ("jensenshannon", 0.05)
    assert (by_name["stable"].method, by_name["stable"].threshold) == ("psi", 0.3)


def test_a_threshold_override_keeps_the_default_test() -> None:
    reference, current = frames()
    overrides = {"shifted": ColumnOverride(threshold=1e-30)}

    report = run_evidently(reference, current, config(per_column=overrides), None)
    shifted = report.columns[0]

    assert (shifted.method, shifted.threshold) == ("ks", 1e-30)
    assert shifted.drifted is (shifted.score < 1e-30)


@pytest.mark.parametrize("method", ["psi", "jensenshannon", "hellinger", "wasserstein"])
def test_a_distance_drifts_at_or_above_its_threshold(method: str) -> None:
    reference, current = frames()
    base = run_evidently(reference, current, config(method=method, columns=["shifted"]), None)
    score = base.columns[0].score

    below = run_evidently(
        reference, current, config(method=method, threshold=score * 1.01, columns=["shifted"]), None
    )
    above = run_evidently(
        reference, current, config(method=method, threshold=score * 0.99, columns=["shifted"]), None
    )

    assert (below.columns[0].drifted, above.columns[0].drifted) == (False, True)


@pytest.mark.parametrize(("drift_share", "verdict"), [(0.25, True), (0.5, False), (1.0, False)])
def test_drift_share_sets_the_dataset_verdict(drift_share: float, verdict: bool) -> None:
    reference, current = frames()

    report = run_evidently(reference, current, config(drift_share=drift_share), None)

    assert report.drifted_count == 1 and report.drifted_share == 0.25
    assert (report.drift_share, report.dataset_drift) == (drift_share, verdict)


# --- errors ---------------------------------------------------------------------------------------


def test_guardflows_own_two_sample_chisquare_is_refused() -> None:
    reference, current = frames()
    overrides = {"city": ColumnOverride(method="chisquare_2sample")}

    with pytest.raises(ConfigurationError, match="engine='native'"):
        run_evidently(reference, current, config(per_column=overrides), None)


@pytest.mark.parametrize(
    ("column", "method"),
    [("city", "ks"), ("city", "wasserstein"), ("shifted", "chisquare"), ("shifted", "z")],
)
def test_a_method_evidently_has_not_for_the_column_type_is_refused(
    column: str, method: str
) -> None:
    reference, current = frames()
    overrides = {column: ColumnOverride(method=method)}

    with pytest.raises(ConfigurationError, match=f"{method!r} test does not apply") as info:
        run_evidently(reference, current, config(per_column=overrides), None)
    assert column in str(info.value)


def test_pandas_3_gives_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake: pandas 3 cannot be installed beside Evidently 0.7 here, and the version string is all
    # the check reads, so the installed pandas 2 reports a 3.x version for this test.
    monkeypatch.setattr(pd, "__version__", "3.0.1")
    reference, current = frames()

    with pytest.raises(ConfigurationError, match=r"pandas < 3.*pandas 3\.0\.1 is installed"):
        run_evidently(reference, current, config(), None)


def test_without_evidently_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "evidently", None)  # Python's own "not installed" marker
    reference, current = frames()

    with pytest.raises(MissingExtraError, match=r"guardflow\[evidently\]"):
        run_evidently(reference, current, config(), None)


def test_an_empty_frame_is_an_input_error() -> None:
    reference, current = frames()

    with pytest.raises(DriftInputError, match="current data has no rows"):
        run_evidently(reference, current.iloc[0:0], config(), None)


def test_an_all_null_column_is_an_input_error_naming_it_not_its_values() -> None:
    reference, current = frames()
    reference["city"] = None

    with pytest.raises(DriftInputError, match="'city'") as info:
        run_evidently(reference, current, config(), None)
    assert info.value.columns == ["city"]
    assert PLANTED not in str(info.value)


def test_an_all_infinite_numerical_column_is_an_input_error() -> None:
    reference, current = frames()
    current["stable"] = np.inf

    with pytest.raises(DriftInputError, match="only nulls, NaN or infinities in the current"):
        run_evidently(reference, current, config(), None)


def test_text_in_a_numerical_column_is_an_input_error() -> None:
    reference, current = frames()

    with pytest.raises(DriftInputError, match="typed numerical") as info:
        run_evidently(
            reference,
            current,
            config(
                numerical=["shifted", "city"],
                categorical=["flag"],
                columns=["shifted", "city", "flag"],
            ),
            None,
        )
    assert PLANTED not in str(info.value)


def test_a_missing_column_is_an_input_error() -> None:
    reference, current = frames()

    with pytest.raises(DriftInputError, match="reference data lacks") as info:
        run_evidently(reference.drop(columns=["flag"]), current, config(), None)
    assert info.value.columns == ["flag"]


def test_frames_other_than_pandas_are_refused_with_a_pointer_to_check_drift() -> None:
    reference, current = frames()

    with pytest.raises(DriftInputError, match="check_drift converts"):
        run_evidently(reference.to_dict("records"), current, config(), None)
