"""`guardflow quality` as a user runs it: a real process, real GX, exit codes, no data values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from guardflow.quality import QualitySummary
from guardflow.testing.cli import run_cli

PLANTED = "planted-card-4111-1111-1111-1111"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quality-cli") / "payments.csv"
    lines = ["id,card,amount"] + [
        f"{i},{PLANTED if i % 5 == 0 else 'tok_' + str(i)},{'' if i == 3 else i * 1.5}"
        for i in range(30)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _suite(folder: Path, *expectations: dict[str, object], suffix: str = ".yaml") -> Path:
    path = folder / f"payments{suffix}"
    spec = {"name": "payments", "expectations": list(expectations)}
    text = json.dumps(spec) if suffix == ".json" else yaml.safe_dump(spec)
    path.write_text(text, encoding="utf-8")
    return path


UNIQUE_IDS = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}
NO_NULL_AMOUNT = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}}
TOKENS_ONLY = {
    "type": "expect_column_values_to_match_regex",
    "kwargs": {"column": "card", "regex": "^tok_"},
}


def test_a_passing_suite_exits_0(data: Path, tmp_path: Path) -> None:
    suite = _suite(tmp_path, UNIQUE_IDS)
    out = run_cli("quality", str(data), "--suite", str(suite), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    expected = "suite 'payments' passed: 1/1 expectations passed (100.0%) on 30 rows"
    assert out.stdout.strip() == expected


def test_a_failing_suite_exits_1_and_prints_counts_not_values(data: Path, tmp_path: Path) -> None:
    suite = _suite(tmp_path, UNIQUE_IDS, NO_NULL_AMOUNT, TOKENS_ONLY, suffix=".json")
    target = tmp_path / "summary.json"
    out = run_cli(
        "quality",
        str(data),
        "--suite",
        str(suite),
        "--format",
        "json",
        "--output",
        str(target),
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    printed = json.loads(out.stdout)
    assert printed["success"] is False and printed["rows"] == 30
    assert [(f["column"], f["unexpected_count"]) for f in printed["failed"]] == [
        ("amount", 1),
        ("card", 6),
    ]
    assert QualitySummary.from_json(target.read_bytes()).to_dict() == printed
    assert PLANTED not in out.stdout + out.stderr + target.read_text(encoding="utf-8")


def test_text_output_lists_the_failed_expectations(data: Path, tmp_path: Path) -> None:
    suite = _suite(tmp_path, TOKENS_ONLY)
    out = run_cli("quality", str(data), "--suite", str(suite), cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "expect_column_values_to_match_regex  card" in out.stdout
    assert PLANTED not in out.stdout + out.stderr


def test_an_invalid_suite_exits_2_naming_the_expectation(data: Path, tmp_path: Path) -> None:
    suite = _suite(
        tmp_path,
        UNIQUE_IDS,
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "card", "value_set": 5}},
    )
    out = run_cli("quality", str(data), "--suite", str(suite), cwd=tmp_path)
    assert out.returncode == 2
    assert "expectation #2 (expect_column_values_to_be_in_set on column 'card')" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_missing_data_file_exits_2(tmp_path: Path) -> None:
    suite = _suite(tmp_path, UNIQUE_IDS)
    out = run_cli("quality", str(tmp_path / "none.parquet"), "--suite", str(suite), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "none.parquet" in out.stderr
