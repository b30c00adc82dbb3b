"""Drift: guardflow's native engine vs Evidently's DataDriftPreset, time, memory and agreement.

On the same pandas frames (reference and current of ``--rows`` rows each, 15 columns: 10 numeric,
5 string categoricals, a shift planted in 3 of them), this compares:

- ours: ``guardflow.drift.check_drift(reference, current)`` with the native engine, the whole
  step as a user calls it (conversion to Arrow, fingerprints of both sides, audit event);
- Evidently 0.7.23: ``Report([DataDriftPreset()], include_tests=True).run(current, reference)``
  with a ``DataDefinition`` naming the same column types (so Evidently does not infer them), as an
  Evidently user writes it; the tests give its per-column verdicts.

Method. Both engines are imported and warmed up once in this process (imports are not drift
work) and the data is built here. Each timed run then happens in a child forked from this
process, so every run starts from the same memory: the data, both libraries, nothing else. The
child resets its peak resident set size (``/proc/self/clear_refs``), reads its resident set size,
times the call with ``time.perf_counter``, then reads its peak (``VmHWM``): peak minus start is
the memory the engine added at its peak (library code pages the engine touches for the first
time in the child count too, alike for both). The child sends its scores back through a pipe;
this process also reads the child's whole peak from ``os.wait4`` (``ru_maxrss``, data and
libraries included). A child that does nothing measures the floor of the method. Times are
medians over the repeats; peaks are the largest seen.

Goal (issue 5): at 1M rows ours is at least 50x faster, uses at most half the peak memory, every
score is within 1e-9 of Evidently's and the drifted columns are the same.

Usage:
    python benchmarks/drift.py [--rows 10000,100000,1000000] [--repeats 3]
                               [--evidently-repeats 1] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from _common import append_results, machine, table

from guardflow.audit import MemoryAuditSink
from guardflow.drift import DriftConfig, check_drift
from guardflow.drift._evidently import _registry_name

GOAL_SPEED, GOAL_MEMORY, GOAL_DIFF = 50.0, 0.5, 1e-9
NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SHIFTED = ["num_0", "num_5", "cat_2"]
VOCAB_SIZES = [3, 5, 8, 12, 20]

Result = dict[str, Any]


def make_frame(rows: int, seed: int, *, shifted: bool) -> pd.DataFrame:
    """15 columns; with ``shifted`` the 3 columns in SHIFTED move, the other 12 do not."""
    rng = np.random.default_rng(seed)
    shift = 1.0 if shifted else 0.0
    data: dict[str, Any] = {
        "num_0": rng.normal(0.3 * shift, 1.0, rows),
        "num_1": rng.normal(10.0, 3.0, rows),
        "num_2": rng.lognormal(0.0, 0.5, rows),
        "num_3": rng.uniform(-1.0, 1.0, rows),
        "num_4": rng.exponential(2.0, rows),
        "num_5": rng.gamma(2.0, 1.0 + 0.3 * shift, rows),
        "num_6": rng.normal(-5.0, 0.5, rows),
        "num_7": rng.integers(0, 1000, rows).astype(np.float64),
        "num_8": rng.beta(2.0, 5.0, rows),
        "num_9": rng.standard_t(5.0, rows),
    }
    for i, size in enumerate(VOCAB_SIZES):
        vocab = np.array([f"c{i}_v{j}" for j in range(size)], dtype=object)
        weights = np.linspace(1.0, 2.0, size)
        if shifted and f"cat_{i}" in SHIFTED:
            weights = weights[::-1] ** 3  # the rare values become the common ones
        data[f"cat_{i}"] = rng.choice(vocab, rows, p=weights / weights.sum())
    return pd.DataFrame(data)


def ours(reference: pd.DataFrame, current: pd.DataFrame) -> Result:
    """guardflow's native engine, the call a user makes."""
    report = check_drift(reference, current, audit_sink=MemoryAuditSink())
    return {c.column: (c.method, c.score, c.drifted) for c in report.columns}


def evidently(reference: pd.DataFrame, current: pd.DataFrame) -> Result:
    """Evidently's DataDriftPreset as an Evidently user runs it, column types given."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=NUMERIC,
        categorical_columns=CATEGORICAL,
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )  # every type given: Evidently infers nothing
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return _read_snapshot(snapshot.dict())


def _read_snapshot(result: dict[str, Any]) -> Result:
    status = {t["metric_config"]["metric_id"]: str(t["status"]) for t in result["tests"]}
    scores: Result = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            kind = "num" if config["column"] in NUMERIC else "cat"
            drifted = status[metric["id"]].upper().endswith("FAIL")
            method = _registry_name(config["method"], kind)
            scores[config["column"]] = (method, float(metric["value"]), drifted)
    return scores


def idle(reference: pd.DataFrame, current: pd.DataFrame) -> Result:
    """Nothing: the floor of the memory measurement."""
    return {}


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def in_child(fn: Callable[[pd.DataFrame, pd.DataFrame], Result], *frames: pd.DataFrame) -> Result:
    """Run ``fn`` in a forked child; return its seconds, scores and peak memory added."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report through the pipe, leave without cleanup
        os.close(read_end)
        code = 0
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
                refs.write("5")  # reset this process's peak RSS (VmHWM) to its current RSS
            start_kib = _status_kib("VmRSS")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                scores = fn(*frames)
                seconds = time.perf_counter() - start
            added_kib = _status_kib("VmHWM") - start_kib
            payload = json.dumps({"seconds": seconds, "scores": scores, "added_kib": added_kib})
        except BaseException as exc:
            payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            code = 1
        with os.fdopen(write_end, "wb") as out:
            out.write(payload.encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload_bytes = pipe.read()
    _, _, usage = os.wait4(pid, 0)
    result: Result = json.loads(payload_bytes)
    if "error" in result:
        sys.exit(f"{fn.__name__} failed in its child process: {result['error']}")
    result["peak_mib"] = result.pop("added_kib") / 1024
    result["total_mib"] = usage.ru_maxrss / 1024  # the child's whole peak, data included
    return result


def warm_up() -> None:
    """Import both engines and run each once on small frames, here, before any fork."""
    small_ref, small_cur = make_frame(2_000, 1, shifted=False), make_frame(2_000, 2, shifted=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours(small_ref, small_cur)
        evidently(small_ref, small_cur)
    DriftConfig()  # pydantic models built


def measure(rows: int, repeats: int, evidently_repeats: int) -> dict[str, Any]:
    """Time both engines at one size; return the figures and the agreement."""
    reference = make_frame(rows, 10, shifted=False)
    current = make_frame(rows, 20, shifted=True)
    runs: dict[str, list[Result]] = {"ours": [], "evidently": []}
    floor = in_child(idle, reference, current)["peak_mib"]
    for i in range(max(repeats, evidently_repeats)):
        if i < repeats:
            runs["ours"].append(in_child(ours, reference, current))
        if i < evidently_repeats:
            runs["evidently"].append(in_child(evidently, reference, current))
        print(f"  {rows:,} rows: run {i + 1} done", flush=True)
    mine, theirs = runs["ours"][0]["scores"], runs["evidently"][0]["scores"]
    diffs = [abs(mine[c][1] - theirs[c][1]) for c in mine]
    return {
        "rows": rows,
        "floor_mib": floor,
        "seconds": {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()},
        "peak_mib": {k: max(r["peak_mib"] for r in v) for k, v in runs.items()},
        "total_mib": {k: max(r["total_mib"] for r in v) for k, v in runs.items()},
        "max_diff": max(diffs),
        "same_methods": {c: m[0] for c, m in mine.items()} == {c: m[0] for c, m in theirs.items()},
        "drifted": (
            sorted(c for c, m in mine.items() if m[2]),
            sorted(c for c, m in theirs.items() if m[2]),
        ),
    }


def report(figures: list[dict[str, Any]], args: argparse.Namespace, where: str) -> str:
    """The Markdown section: table, goals, method."""
    rows = []
    for f in figures:
        speed = f["seconds"]["evidently"] / f["seconds"]["ours"]
        memory = f["peak_mib"]["ours"] / max(f["peak_mib"]["evidently"], 1e-9)
        same = f["drifted"][0] == f["drifted"][1]
        rows.append(
            [
                f"{f['rows']:,}",
                f"{f['seconds']['ours']:.3f}",
                f"{f['seconds']['evidently']:.2f}",
                f"{speed:,.0f}x",
                f"{f['peak_mib']['ours']:,.0f} ({f['total_mib']['ours']:,.0f})",
                f"{f['peak_mib']['evidently']:,.0f} ({f['total_mib']['evidently']:,.0f})",
                f"{memory:.2f}",
                f"{f['max_diff']:.1e}",
                "yes" if same and f["same_methods"] else "NO",
            ]
        )
    header = [
        "rows",
        "ours s",
        "Evidently s",
        "speed-up",
        "ours peak MiB (total)",
        "Evidently peak MiB (total)",
        "memory ratio",
        "max abs score diff",
        "same drifted + methods",
    ]
    big = max(figures, key=lambda f: f["rows"])
    speed = big["seconds"]["evidently"] / big["seconds"]["ours"]
    memory = big["peak_mib"]["ours"] / max(big["peak_mib"]["evidently"], 1e-9)
    same = big["drifted"][0] == big["drifted"][1] and big["same_methods"]
    verdict = {True: "met", False: "NOT met"}
    checks = [
        f"speed-up {speed:,.0f}x (goal >= {GOAL_SPEED:.0f}x: {verdict[speed >= GOAL_SPEED]})",
        f"memory ratio {memory:.2f} (goal <= {GOAL_MEMORY}: {verdict[memory <= GOAL_MEMORY]})",
        f"max |score diff| {big['max_diff']:.1e} "
        f"(goal <= {GOAL_DIFF:.0e}: {verdict[big['max_diff'] <= GOAL_DIFF]})",
        f"same drifted columns and methods: {verdict[same]} "
        f"(ours {big['drifted'][0]}, Evidently {big['drifted'][1]})",
    ]
    floors = ", ".join(f"{f['floor_mib']:.0f}" for f in figures)
    return "\n".join(
        [
            f"Machine: {where}.",
            f"Reference and current of the same size, 15 columns (10 numeric, 5 string "
            f"categorical), shift planted in {', '.join(SHIFTED)}. Ours: "
            f"`check_drift(reference, current)` (native engine, pandas in). Evidently 0.7.23: "
            f"`Report([DataDriftPreset()], include_tests=True).run(current, reference)` with a "
            f"DataDefinition. Times: median of {args.repeats} run(s) for ours, "
            f"{args.evidently_repeats} for Evidently.",
            "",
            table(header, rows),
            "",
            f"At {big['rows']:,} rows:",
            *(f"- {line}" for line in checks),
            "",
            "Memory method: each run happens in a child forked from the benchmark process after "
            "both libraries were imported and warmed up and the data was built. The child resets "
            "its peak RSS (`/proc/self/clear_refs`), reads its RSS, runs the engine and reads its "
            "peak (`VmHWM`): 'peak' is the difference, the memory the engine added at its peak; "
            "'(total)' is the child's whole peak RSS from `os.wait4` (`ru_maxrss`), data and "
            f"libraries included. A child that does nothing measures {floors} MiB with this "
            "method.",
        ]
    )


def main() -> None:
    """Parse arguments, measure every size, print and optionally record the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", default="10000,100000,1000000", help="comma-separated sizes (rows per side)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours per size")
    parser.add_argument(
        "--evidently-repeats",
        type=int,
        default=1,
        help="timed runs of Evidently per size (one run at 1M rows takes about a minute)",
    )
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.rows.split(",") if s.strip()]

    where = machine()
    print("importing and warming up both engines...", flush=True)
    warm_up()
    figures = []
    for rows in sizes:
        print(f"measuring {rows:,} rows...", flush=True)
        figures.append(measure(rows, args.repeats, args.evidently_repeats))
    text = report(figures, args, where)
    print(text)
    if args.record:
        append_results(
            "Drift: native engine vs Evidently DataDriftPreset (benchmarks/drift.py)", text
        )
        print("\nappended to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
