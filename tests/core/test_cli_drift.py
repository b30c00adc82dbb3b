"""`guardflow drift` as a user runs it: a real process on real files, exit codes, no data values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guardflow.drift import DriftReport
from guardflow.testing.cli import run_cli

PLANTED = "planted-patient-Jane-Q-Doe"


def _frame(seed: int, *, shift: float, rows: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weights = [0.45, 0.45, 0.1] if shift == 0 else [0.2, 0.2, 0.6]
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 5, rows),
            "income": rng.normal(1000 + 20 * shift, 50, rows),
            "name": rng.choice(["alpha", "beta", PLANTED], rows, p=weights),
        }
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("drift-cli")
    paths = {
        "reference": folder / "reference.parquet",
        "same": folder / "same.csv",
        "shifted": folder / "shifted.jsonl",
    }
    _frame(1, shift=0).to_parquet(paths["reference"], index=False)
    _frame(2, shift=0).to_csv(paths["same"], index=False)
    _frame(3, shift=10).to_json(paths["shifted"], orient="records", lines=True)
    return paths


def test_no_drift_exits_0_with_a_text_table(files: dict[str, Path], tmp_path: Path) -> None:
    out = run_cli("drift", str(files["reference"]), str(files["same"]), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("dataset: no drift: 0/3 columns drifted")
    assert PLANTED not in out.stdout + out.stderr


def test_drift_exits_1_and_json_is_exactly_the_cli_shape(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = run_cli(
        "drift", str(files["reference"]), str(files["shifted"]), "--format", "json", cwd=tmp_path
    )
    assert out.returncode == 1, out.stderr
    printed = json.loads(out.stdout)
    assert set(printed) == {"dataset_drift", "drifted_share", "columns"}
    assert printed["dataset_drift"] is True and printed["drifted_share"] == 1.0
    assert [c["column"] for c in printed["columns"]] == ["age", "income", "name"]
    assert [c["method"] for c in printed["columns"]] == ["ks", "ks", "chisquare"]
    for column in printed["columns"]:
        assert set(column) == {"column", "method", "score", "threshold", "drifted"}
    assert PLANTED not in out.stdout + out.stderr


def test_output_writes_the_full_report(files: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "reports" / "drift.json"
    out = run_cli(
        "drift",
        str(files["reference"]),
        str(files["shifted"]),
        "--format",
        "json",
        "--output",
        str(target),
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    report = DriftReport.from_json(target.read_bytes())
    assert report.cli_dict() == json.loads(out.stdout)
    assert report.reference_rows == 800 and report.current_fingerprint
    assert PLANTED not in target.read_text(encoding="utf-8")


def test_config_and_columns_choose_the_tests(files: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "drift.yaml"
    config.write_text(
        "threshold: 0.3\nper_column:\n  name: {method: chisquare_2sample, threshold: 0.01}\n",
        encoding="utf-8",
    )
    out = run_cli(
        "drift",
        str(files["reference"]),
        str(files["shifted"]),
        "--config",
        str(config),
        "--columns",
        "name,age",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    columns = {c["column"]: c for c in json.loads(out.stdout)["columns"]}
    assert set(columns) == {"name", "age"}
    assert (columns["name"]["method"], columns["name"]["threshold"]) == ("chisquare_2sample", 0.01)
    assert columns["age"]["threshold"] == 0.3


def test_a_missing_input_exits_2_without_a_traceback(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = run_cli("drift", str(files["reference"]), str(tmp_path / "gone.csv"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "gone.csv" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_an_invalid_config_exits_2(files: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "drift.yaml"
    config.write_text("method: not-a-test\n", encoding="utf-8")
    out = run_cli(
        "drift", str(files["reference"]), str(files["same"]), "--config", str(config), cwd=tmp_path
    )
    assert out.returncode == 2
    assert "invalid drift config" in out.stderr and "method" in out.stderr


def test_html_needs_the_evidently_engine(files: dict[str, Path], tmp_path: Path) -> None:
    out = run_cli(
        "drift",
        str(files["reference"]),
        str(files["same"]),
        "--html",
        str(tmp_path / "r.html"),
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "evidently" in out.stderr
    assert not (tmp_path / "r.html").exists()


def test_the_evidently_engine_writes_the_html_report(
    files: dict[str, Path], tmp_path: Path
) -> None:
    html = tmp_path / "report.html"
    out = run_cli(
        "drift",
        str(files["reference"]),
        str(files["shifted"]),
        "--engine",
        "evidently",
        "--html",
        str(html),
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    assert "engine evidently" in out.stdout
    assert html.stat().st_size > 0


def test_mlflow_options_log_the_report(files: dict[str, Path], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = run_cli(
        "drift",
        str(files["reference"]),
        str(files["shifted"]),
        "--mlflow-uri",
        uri,
        "--mlflow-experiment",
        "cli-drift",
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    run_id = out.stderr.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    run = MlflowClient(uri).get_run(run_id)
    assert run.data.metrics["drift.dataset_drift"] == 1.0
    assert PLANTED not in json.dumps([sorted(run.data.metrics), run.data.params, run.data.tags])
