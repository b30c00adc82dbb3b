"""`guardflow infer` as a user runs it: files in, files out, exit codes, no secret on screen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardflow.cli import main
from guardflow.testing.fault_server import Fault, FaultServer, predict_row

TOKEN = "tok-cli-planted-7f3a9c"


def _write_csv(path: Path, rows: int) -> Path:
    lines = ["id,f0,f1"] + [f"r{i},{i},{i * 0.5}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_infer_scores_csv_into_parquet_with_prediction_column(
    fault_server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    src = _write_csv(tmp_path / "in.csv", 25)
    out = tmp_path / "out.parquet"
    code = main(
        [
            "infer",
            str(src),
            str(out),
            "--endpoint",
            fault_server.url,
            "--protocol",
            "mlflow",
            "--batch-size",
            "10",
            "--concurrency",
            "2",
            "--key-column",
            "id",
            "--columns",
            "f0,f1",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 25 and summary["succeeded"] == 25 and summary["failed"] == 0
    assert summary["batches"] == 3
    table = pq.read_table(out).to_pylist()
    assert [r["id"] for r in table] == [f"r{i}" for i in range(25)]
    for row in table:
        assert row["prediction"] == pytest.approx(predict_row({"f0": row["f0"], "f1": row["f1"]}))


def test_infer_exits_3_with_clear_message_when_server_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = FaultServer().start()
    url = server.url
    server.stop()
    src = _write_csv(tmp_path / "in.csv", 3)
    code = main(["infer", str(src), str(tmp_path / "o.jsonl"), "--endpoint", url, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("error: ")
    assert url in err
    assert not (tmp_path / "o.jsonl").exists()


def test_infer_exits_1_and_keeps_failed_rows_in_dead_letter(
    fault_server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fault_server.add_faults(Fault.ok(), Fault.bad_request())
    src = _write_csv(tmp_path / "in.csv", 20)
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "infer",
            str(src),
            str(out),
            "--endpoint",
            fault_server.url,
            "--batch-size",
            "10",
            "--concurrency",
            "1",
            "--key-column",
            "id",
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    summary = json.loads(captured.out)
    assert summary["succeeded"] == 10 and summary["failed"] == 10
    assert "error:" in captured.err
    scored = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    dead = [
        json.loads(line)["id"] for line in Path(summary["dead_letter_uri"]).read_text().splitlines()
    ]
    assert sorted(scored + dead) == sorted(f"r{i}" for i in range(20))


def test_infer_token_comes_from_env_and_is_never_printed(
    fault_server: FaultServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUARDFLOW_INFERENCE_TOKEN", TOKEN)
    src = _write_csv(tmp_path / "in.csv", 4)
    code = main(
        [
            "infer",
            str(src),
            str(tmp_path / "o.jsonl"),
            "--endpoint",
            fault_server.url,
            "-v",
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert fault_server.inference_requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in captured.out + captured.err


def test_infer_rejects_unknown_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["infer", "a.csv", "b.jsonl", "--endpoint", "http://x", "--protocol", "grpc"])
    assert exc.value.code == 2
    assert "invalid choice: 'grpc'" in capsys.readouterr().err


def test_infer_rejects_bad_endpoint_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write_csv(tmp_path / "in.csv", 1)
    code = main(["infer", str(src), str(tmp_path / "o.jsonl"), "--endpoint", "localhost:5000"])
    assert code == 2
    assert "must start with http:// or https://" in capsys.readouterr().err


def test_version_prints_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from guardflow import __version__

    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_invalid_endpoint_is_reported_without_echoing_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _write_csv(tmp_path / "in.csv", 1)
    planted = "user:pw-planted-91c2@models.internal"
    code = main(["infer", str(src), str(tmp_path / "o.jsonl"), "--endpoint", planted])
    err = capsys.readouterr().err
    assert code == 2
    assert "endpoint.url" in err
    assert "pw-planted-91c2" not in err


def test_the_sample_dataset_is_deterministic_and_scores_through_the_cli(
    fault_server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guardflow.samples import FEATURES, KEY_COLUMN, write_sample_csv

    first = write_sample_csv(tmp_path / "a.csv", rows=30)
    second = write_sample_csv(tmp_path / "b.csv", rows=30)
    assert first.read_bytes() == second.read_bytes()
    code = main(
        [
            "infer",
            str(first),
            str(tmp_path / "o.jsonl"),
            "--endpoint",
            fault_server.url,
            "--key-column",
            KEY_COLUMN,
            "--columns",
            ",".join(FEATURES),
            "--no-progress",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["succeeded"] == 30
