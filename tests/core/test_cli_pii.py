"""`guardflow pii` as a user runs it: real processes on real files, exit codes, no PII printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from guardflow.testing.cli import run_cli

EMAIL = "jane.q.doe@example.org"
OTHER_EMAIL = "bob.k.smith@example.net"
IP = "203.0.113.77"
PLANTED = (EMAIL, OTHER_EMAIL, IP)


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _assert_no_pii(*texts: str) -> None:
    for value in PLANTED:
        for text in texts:
            assert value not in text


# -- detect ----------------------------------------------------------------------------------


def test_detect_writes_one_line_per_record_in_the_exact_shape(tmp_path: Path) -> None:
    source = _jsonl(
        tmp_path / "in.jsonl",
        [
            {"doc": "a-1", "body": f"write to {EMAIL} today"},
            {"doc": "a-2", "body": "nothing to see here"},
        ],
    )

    out = run_cli(
        "pii", "detect", str(source), "--text-field", "body", "--id-field", "doc",
        "--output", str(tmp_path / "out.jsonl"), cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    lines = _lines(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == ["a-1", "a-2"]
    assert all(set(line) == {"id", "entities"} for line in lines)
    (entity,) = lines[0]["entities"]
    assert set(entity) == {"type", "start", "end", "score"}
    assert (entity["type"], entity["start"], entity["end"]) == ("EMAIL_ADDRESS", 9, 9 + len(EMAIL))
    assert isinstance(entity["score"], float) and 0 < entity["score"] <= 1
    assert lines[1]["entities"] == []
    _assert_no_pii(out.stdout, out.stderr)


def test_detect_offsets_are_code_points_not_bytes(tmp_path: Path) -> None:
    text = f"Zoë 🙂 naïve café — {EMAIL} and {IP}"
    source = _jsonl(tmp_path / "in.jsonl", [{"id": 7, "text": text}])

    out = run_cli(
        "pii", "detect", str(source), "--text-field", "text", "--output",
        str(tmp_path / "out.jsonl"), cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    (line,) = _lines(tmp_path / "out.jsonl")
    assert line["id"] == 7
    spans = {e["type"]: text[e["start"] : e["end"]] for e in line["entities"]}
    assert spans == {"EMAIL_ADDRESS": EMAIL, "IP_ADDRESS": IP}


def test_detect_keeps_records_without_text_and_ids_them_by_line_without_an_id(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"text": None}) + "\n\n" + json.dumps({"other": 1}) + "\n"
        + json.dumps({"text": EMAIL}) + "\n",
        "utf-8",
    )  # fmt: skip

    out = run_cli(
        "pii", "detect", str(source), "--text-field", "text", "--output",
        str(tmp_path / "out.jsonl"), cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    lines = _lines(tmp_path / "out.jsonl")
    # The blank line is no record, but ids stay 0-based line numbers of the input file.
    assert [line["id"] for line in lines] == [0, 2, 3]
    assert [len(line["entities"]) for line in lines] == [0, 0, 1]


def test_detect_batches_many_records_in_order(tmp_path: Path) -> None:
    records = [{"id": i, "t": f"{i} {EMAIL}" if i % 3 == 0 else str(i)} for i in range(20_000)]
    source = _jsonl(tmp_path / "in.jsonl", records)

    out = run_cli(
        "pii", "detect", str(source), "--text-field", "t", "--output",
        str(tmp_path / "out.jsonl"), cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    lines = _lines(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == list(range(20_000))
    assert [bool(line["entities"]) for line in lines] == [i % 3 == 0 for i in range(20_000)]


def test_detect_a_bad_line_exits_2_naming_the_line_not_its_content(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 1, "t": "x"}) + "\n" + f"{{'t': '{EMAIL}'\n", "utf-8")
    output = tmp_path / "out.jsonl"

    out = run_cli(
        "pii", "detect", str(source), "--text-field", "t", "--output", str(output), cwd=tmp_path
    )

    assert out.returncode == 2
    assert "line 2" in out.stderr
    assert not output.exists()
    _assert_no_pii(out.stdout, out.stderr)


def test_detect_a_missing_id_field_exits_2(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{"key": 1, "t": EMAIL}])

    out = run_cli(
        "pii", "detect", str(source), "--text-field", "t", "--id-field", "row",
        "--output", str(tmp_path / "out.jsonl"), cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 2
    assert "'row'" in out.stderr


def test_detect_a_missing_input_exits_2(tmp_path: Path) -> None:
    out = run_cli(
        "pii", "detect", str(tmp_path / "nope.jsonl"), "--text-field", "t",
        "--output", str(tmp_path / "out.jsonl"), cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 2
    assert "does not exist" in out.stderr


# -- mask ------------------------------------------------------------------------------------

POLICY = """
columns:
  email:
    entity: EMAIL_ADDRESS
    action: replace
free_text_columns: [notes]
default_action: replace
"""


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": [1, 2, 3],
            "email": [EMAIL, OTHER_EMAIL, None],
            "notes": [f"call from {IP}", "no pii", f"cc {OTHER_EMAIL}"],
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_mask_writes_a_file_without_the_pii_and_prints_counts(
    frame: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    source = _write(frame, tmp_path / f"in{suffix}")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, "utf-8")
    target = tmp_path / f"out{suffix}"

    out = run_cli("pii", "mask", str(source), str(target), "--policy", str(policy), cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    _assert_no_pii(target.read_bytes().decode("utf-8", "replace"), out.stdout, out.stderr)
    assert "rows scanned: 3" in out.stdout
    assert "EMAIL_ADDRESS" in out.stdout and "IP_ADDRESS" in out.stdout


def test_mask_json_report_holds_counts_per_column_and_type(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    source = _write(frame, tmp_path / "in.parquet")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, "utf-8")

    out = run_cli(
        "pii", "mask", str(source), str(tmp_path / "out.parquet"), "--policy", str(policy),
        "--format", "json", cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["counts"]["email"] == {"EMAIL_ADDRESS": 2}
    assert report["counts"]["notes"] == {"IP_ADDRESS": 1, "EMAIL_ADDRESS": 1}
    assert report["rows_scanned"] == 3
    masked = pd.read_parquet(tmp_path / "out.parquet")
    assert list(masked["row_id"]) == [1, 2, 3]


def test_mask_with_an_invalid_policy_exits_2(frame: pd.DataFrame, tmp_path: Path) -> None:
    source = _write(frame, tmp_path / "in.csv")
    policy = tmp_path / "policy.yaml"
    policy.write_text("default_action: shred\n", "utf-8")

    out = run_cli(
        "pii", "mask", str(source), str(tmp_path / "out.csv"), "--policy", str(policy),
        cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 2
    assert "default_action" in out.stderr
    assert not (tmp_path / "out.csv").exists()


def test_tokenizing_without_vault_variables_exits_2_naming_the_variable(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    source = _write(frame, tmp_path / "in.csv")
    policy = tmp_path / "policy.yaml"
    policy.write_text("columns:\n  email: {entity: EMAIL_ADDRESS, action: tokenize}\n", "utf-8")

    out = run_cli(
        "pii", "mask", str(source), str(tmp_path / "out.csv"), "--policy", str(policy),
        cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 2
    assert "VAULT_ADDR" in out.stderr


def test_tokenize_reads_vault_from_the_environment_and_is_deterministic(
    frame: pd.DataFrame, tmp_path: Path, vault_server: Any
) -> None:
    vault_server.ensure_ready()
    frame["email"] = [EMAIL, OTHER_EMAIL, EMAIL]
    source = _write(frame, tmp_path / "in.parquet")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "columns:\n  email: {entity: EMAIL_ADDRESS, action: tokenize}\n"
        "transit_key: guardflow-cli-tests\n",
        "utf-8",
    )
    env = {"VAULT_ADDR": vault_server.url, "VAULT_TOKEN": vault_server.root_token}

    out = run_cli(
        "pii", "mask", str(source), str(tmp_path / "out.parquet"), "--policy", str(policy),
        cwd=tmp_path, env=env,
    )  # fmt: skip

    assert out.returncode == 0, out.stderr
    tokens = list(pd.read_parquet(tmp_path / "out.parquet")["email"])
    assert tokens[0] == tokens[2] != tokens[1]
    _assert_no_pii(" ".join(tokens), out.stdout, out.stderr)
    assert vault_server.root_token not in out.stdout + out.stderr


# -- scan ------------------------------------------------------------------------------------


def test_scan_exits_1_when_pii_is_where_the_policy_does_not_allow_it(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    source = _write(frame, tmp_path / "in.parquet")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "free_text_columns: [notes, email]\nallow:\n  email: [EMAIL_ADDRESS]\n", "utf-8"
    )

    out = run_cli("pii", "scan", str(source), "--policy", str(policy), cwd=tmp_path)

    assert out.returncode == 1, out.stderr
    assert "'notes'" in out.stderr and "'email'" not in out.stderr
    _assert_no_pii(out.stdout, out.stderr)


def test_scan_exits_0_when_every_type_found_is_allowed(frame: pd.DataFrame, tmp_path: Path) -> None:
    source = _write(frame, tmp_path / "in.csv")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "free_text_columns: [notes, email]\nallow:\n  email: [EMAIL_ADDRESS]\n"
        "  notes: [EMAIL_ADDRESS, IP_ADDRESS]\n",
        "utf-8",
    )

    out = run_cli(
        "pii", "scan", str(source), "--policy", str(policy), "--format", "json", cwd=tmp_path
    )

    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed["violations"] == {}
    assert printed["counts"]["notes"] == {"IP_ADDRESS": 1, "EMAIL_ADDRESS": 1}


def test_scan_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("free_text_columns: [notes]\n", "utf-8")

    out = run_cli(
        "pii", "scan", str(tmp_path / "missing.csv"), "--policy", str(policy), cwd=tmp_path
    )

    assert out.returncode == 2
