"""Detection on worker processes (``workers=N``): same output as one process, clear failures.

The workers are real child processes (``python -m guardflow.pii._worker``). The one fault made
on purpose is a worker killed mid-run (``SIGKILL``, as the kernel's OOM killer does), which no
real input produces on demand.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from guardflow.errors import ConfigurationError, GuardflowError
from guardflow.pii import Detector, PIIPolicy, mask_file, mask_table, scan_file, scan_table
from guardflow.pii._parallel import MIN_SLICE_ROWS, ParallelDetector, _Worker
from guardflow.testing.vault_server import assert_secret_absent

EMAIL = "workers.planted@example.org"
SSN = "536-22-8126"
CARD = "4111 1111 1111 1111"
#: Two batches (Parquet row groups), each enough for three slices of MIN_SLICE_ROWS.
ROWS = 6 * MIN_SLICE_ROWS + 517

POLICY = PIIPolicy.model_validate(
    {"columns": {"email": {"entity": "EMAIL_ADDRESS"}}, "free_text_columns": ["notes"]}
)


def _notes(i: int) -> str | None:
    shapes = [
        f"row {i}: ssn {SSN}",
        f"paid with card {CARD} on order {i}",
        f"mail {EMAIL} or call +44 20 7946 {i % 10000:04d}",
        f"version 1.2.{i % 50}.7, nothing here",
        f"ip 10.0.{i % 256}.{(i * 7) % 256} then ü{'é' * (i % 5)}",
    ]
    return None if i % 11 == 0 else shapes[i % len(shapes)]


def _records(n: int = ROWS) -> list[dict[str, Any]]:
    return [{"id": i, "email": f"u{i}.{EMAIL}", "notes": _notes(i)} for i in range(n)]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the requests sent to worker processes (so a test shows they ran)."""
    kinds: list[str] = []
    real_send = _Worker.send

    def send(self: _Worker, request: Any) -> None:
        kinds.append(request[0])
        real_send(self, request)

    monkeypatch.setattr(_Worker, "send", send)
    return kinds


def _parquet(path: Path) -> Path:
    table = pa.Table.from_pylist(_records())
    pq.write_table(table, path, row_group_size=ROWS // 2 + 1)  # two batches, both sliced
    return path


def test_mask_file_gives_the_same_parquet_and_report_with_any_number_of_workers(
    tmp_path: Path, sent: list[str]
) -> None:
    source = _parquet(tmp_path / "in.parquet")
    one = mask_file(source, tmp_path / "one.parquet", POLICY)
    assert sent == []
    three = mask_file(source, tmp_path / "three.parquet", POLICY, workers=3)
    assert sent == ["arrow"] * 4  # two row groups, two worker slices each
    masked = pq.read_table(tmp_path / "one.parquet")
    assert masked.equals(pq.read_table(tmp_path / "three.parquet"))
    assert one.counts == three.counts
    assert (one.rows_scanned, one.rows_touched, one.bytes_scanned, one.batches) == (
        three.rows_scanned,
        three.rows_touched,
        three.bytes_scanned,
        three.batches,
    )
    # Not a vacuous match: every PII shape was found and masked in the free text.
    assert set(one.counts["notes"]) >= {"US_SSN", "CREDIT_CARD", "EMAIL_ADDRESS", "PHONE_NUMBER"}
    notes = masked.column("notes").to_pylist()
    assert all(SSN not in n and EMAIL not in n for n in notes if n)
    assert notes[0] is None and notes[5] == "row 5: ssn <US_SSN>"
    assert notes[1] == "paid with card <CREDIT_CARD> on order 1"


def test_jsonl_and_csv_give_the_same_output_with_workers(tmp_path: Path, sent: list[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    mask_file(source, tmp_path / "one.jsonl", POLICY, batch_rows=ROWS)
    mask_file(source, tmp_path / "two.jsonl", POLICY, batch_rows=ROWS, workers=2)
    assert sent == ["texts"]  # JSONL records: lists of strings
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert SSN not in (tmp_path / "two.jsonl").read_text(encoding="utf-8")

    pacsv.write_csv(pa.Table.from_pylist(_records()), tmp_path / "in.csv")
    mask_file(tmp_path / "in.csv", tmp_path / "one.csv", POLICY)
    mask_file(tmp_path / "in.csv", tmp_path / "two.csv", POLICY, workers=2)
    assert sent[1:] and set(sent[1:]) == {"arrow"}
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()


def test_scans_and_tables_count_the_same_with_workers(tmp_path: Path, sent: list[str]) -> None:
    source = _parquet(tmp_path / "in.parquet")
    assert scan_file(source, POLICY).counts == scan_file(source, POLICY, workers=2).counts
    table = pa.Table.from_pylist(_records())
    out1, rep1 = mask_table(table, POLICY)
    out2, rep2 = mask_table(table, POLICY, workers=2)
    assert out1.equals(out2) and rep1.counts == rep2.counts
    assert scan_table(table, POLICY, workers=2).counts == rep1.counts
    assert sent == ["arrow"] * 4  # scan_file: two row groups; mask_table, scan_table: one


def test_parallel_detector_matches_the_detector_row_for_row() -> None:
    detector = Detector()
    texts = [_notes(i) for i in range(ROWS)]
    texts[5] = "lone surrogate \ud83d then ssn 536-22-8126"  # goes through the pipe as it is
    parallel = ParallelDetector(detector, workers=3)
    try:
        assert parallel.detect_many(texts) == detector.detect_many(texts)
        utf8 = [None if i == 5 else t for i, t in enumerate(texts)]  # Arrow holds no surrogate
        column = pa.chunked_array([utf8[:1000], utf8[1000:]], pa.string())
        assert parallel.detect_column(column) == detector.detect_column(column)
        assert len(parallel._procs) == 2  # this process scans the third slice itself
    finally:
        parallel.close()
    assert parallel._procs == []


def test_small_batches_stay_in_this_process() -> None:
    parallel = ParallelDetector(Detector(), workers=4)
    texts = [_notes(i) for i in range(2 * MIN_SLICE_ROWS - 1)]
    assert parallel.detect_many(texts) == Detector().detect_many(texts)
    assert parallel._procs == []  # fewer than two slices' worth: no worker started


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", None])
def test_workers_must_be_a_whole_number_of_at_least_one(tmp_path: Path, bad: Any) -> None:
    source = _parquet(tmp_path / "in.parquet")
    with pytest.raises(ConfigurationError, match="workers must be a whole number"):
        mask_file(source, tmp_path / "out.parquet", POLICY, workers=bad)
    assert not (tmp_path / "out.parquet").exists()


def test_cli_refuses_a_bad_worker_count(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("free_text_columns: [notes]\n", encoding="utf-8")
    source = _parquet(tmp_path / "in.parquet")
    args = ["pii", "mask", str(source), str(tmp_path / "o.parquet"), "--policy", str(policy)]
    bad = subprocess.run(
        [sys.executable, "-m", "guardflow", *args, "--workers", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "--workers: expected a whole number of 1 or more, got '0'" in bad.stderr
    good = subprocess.run(
        [sys.executable, "-m", "guardflow", *args, "--workers", "2", "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["counts"]["notes"]["US_SSN"] > 0


def test_a_killed_worker_fails_the_run_clearly_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _parquet(tmp_path / "in.parquet")
    started: list[_Worker] = []
    real_send = _Worker.send

    def send_after_kill(self: _Worker, request: Any) -> None:
        started.append(self)
        if len(started) == 2:  # the first batch went through; the worker dies on the second
            self.proc.kill()
            self.proc.wait()
        real_send(self, request)

    monkeypatch.setattr(_Worker, "send", send_after_kill)
    with pytest.raises(GuardflowError, match="PII detection worker process stopped") as caught:
        mask_file(source, tmp_path / "out.parquet", POLICY, workers=2)
    assert caught.value.retryable
    assert "-9" in str(caught.value) or "pipe closed" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]  # nothing partial
    assert all(w.proc.poll() is not None for w in started)  # no worker left running


def test_an_error_here_stops_the_busy_workers_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parallel = ParallelDetector(Detector(), workers=2)
    texts = [_notes(i) for i in range(2 * MIN_SLICE_ROWS)]
    parallel.detect_many(texts)  # starts the worker
    (worker,) = parallel._procs

    def fail(*args: Any) -> Any:
        raise RuntimeError("this process's slice failed")

    monkeypatch.setattr("guardflow.pii._parallel.serve", fail)
    with pytest.raises(RuntimeError, match="slice failed"):
        parallel.detect_many(texts)  # the worker is mid-request when this process fails
    assert worker.proc.returncode == -9  # killed, not waited for
    assert parallel._procs == []


def test_an_error_in_a_worker_names_its_type_only_and_the_worker_goes_on() -> None:
    worker = _Worker()
    settings = (("US_SSN",), True, False, 0.5)
    try:
        worker.send(("texts", settings, 12345))  # not a list of texts
        with pytest.raises(GuardflowError) as caught:
            worker.receive()
        assert str(caught.value) == "a PII detection worker failed: TypeError"
        worker.send(("texts", settings, [f"ssn {SSN}"]))
        assert worker.receive() == [[("US_SSN", 4, 15, 1.0)]]  # 0.75, raised by "ssn"
    finally:
        worker.stop()
    assert worker.proc.returncode == 0


def test_workers_leak_no_planted_value(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    source = _parquet(tmp_path / "in.parquet")
    report = mask_file(source, tmp_path / "out.parquet", POLICY, workers=2)
    out, err = capfd.readouterr()  # the workers' stdout and stderr are these descriptors too
    for planted in (SSN, EMAIL, CARD, "7946"):
        assert_secret_absent(planted, out, err, json.dumps(report.to_dict()))
    assert_secret_absent(SSN, pq.read_table(tmp_path / "out.parquet").to_pylist())


def test_workers_start_from_a_daemonic_process(tmp_path: Path) -> None:
    """Celery and executor workers are daemonic; multiprocessing may not fork from them."""
    source = _parquet(tmp_path / "in.parquet")
    script = textwrap.dedent(
        f"""
        import multiprocessing, sys

        def run():
            from guardflow.pii import PIIPolicy, mask_file
            policy = PIIPolicy.model_validate({POLICY.model_dump(mode="json")!r})
            mask_file({str(source)!r}, {str(tmp_path / "d.parquet")!r}, policy, workers=2)

        if __name__ == "__main__":
            p = multiprocessing.get_context("fork").Process(target=run, daemon=True)
            p.start()
            p.join()
            sys.exit(p.exitcode)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    mask_file(source, tmp_path / "one.parquet", POLICY)
    assert pq.read_table(tmp_path / "d.parquet").equals(pq.read_table(tmp_path / "one.parquet"))
