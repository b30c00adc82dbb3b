"""PII masking of a big Parquet file: throughput and peak memory vs file and row-group size.

Generates Parquet files of ``--size-mb`` MB of text records each (a comma list: one file per
size; the generated corpus of ``benchmarks/_pii_corpus.py``: short free-text lines with planted
PII of every pattern type and hard negatives, plus an id column), written in row groups of
``--row-group-rows`` rows (a comma list runs each). Each file is written in a forked child (so
the generator's heap is never inherited by a measured process) and masked with
``guardflow.pii.mask_file`` (text column declared free text, default action ``replace``) in
another forked child; this process reads the child's peak RSS and CPU time from ``os.wait4``
(``ru_maxrss``: data, libraries and interpreter included). A child that only warms up (one small
masking) measures the floor. ``mask_file`` reads ``batch_rows`` rows at a time (never more than
a row group); ``--batch-rows`` follows the row group unless given.

Goal (issue 4): memory bounded by the row-group size, not the file size. Verdict, per row-group
size, between the smallest and the largest file: "met" when the peak above the floor grows by at
most a quarter of the smallest file's (or 32 MiB, whichever is more) and the largest file is at
least 10x the smallest; the growth is also given per extra GB of text.

Usage:
    python benchmarks/pii_bigfile.py [--size-mb 25,1024] [--row-group-rows 65536,262144]
                                     [--threads 1] [--keep] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import append_results, machine, table
from _pii_corpus import generate

Result = dict[str, Any]


def write_file(path: Path, size_mb: float, row_group_rows: int, seed: int) -> tuple[int, int]:
    """Write ``size_mb`` MB (UTF-8 text) of generated records; return (rows, text bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # At least one row group's worth of distinct records: the detector scans a cell repeated
    # within a batch once, so a smaller pool repeated in every row group would flatter it.
    pool = [text for text, _ in generate(max(20_000, row_group_rows), seed)]
    target = int(size_mb * 1e6)
    rows = written = 0
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64()), ("text", pa.string())])) as out:
        while written < target:
            # Rotate the pool so row groups differ (dictionary encoding cannot fold them).
            shift = (rows // row_group_rows) % len(pool)
            texts = [pool[(shift + i) % len(pool)] for i in range(row_group_rows)]
            batch = pa.table({"id": pa.array(range(rows, rows + len(texts)), pa.int64()),
                              "text": texts})  # fmt: skip
            out.write_table(batch, row_group_size=row_group_rows)
            rows += len(texts)
            written += sum(len(t.encode()) for t in texts)
    return rows, written


def in_child(fn: Callable[[], Result]) -> Result:
    """Run ``fn`` in a forked child; return its result with its peak RSS (MiB) and CPU seconds."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report through the pipe, leave without cleanup
        os.close(read_end)
        code = 0
        try:
            payload = json.dumps(fn())
        except BaseException as exc:
            payload = json.dumps({"error": f"{type(exc).__name__}"})
            code = 1
        with os.fdopen(write_end, "wb") as out:
            out.write(payload.encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, _, usage = os.wait4(pid, 0)
    result: Result = json.loads(data)
    if "error" in result:
        sys.exit(f"the child failed: {result['error']}")
    result["peak_mib"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def rss_mib() -> float:
    """This process's resident set now (MiB), from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def verdict(runs: list[Result]) -> str:
    """One line: does the peak above the floor grow with the file size (see the docstring)?"""
    small, large = min(runs, key=lambda r: r["bytes"]), max(runs, key=lambda r: r["bytes"])
    if large["bytes"] < 10 * small["bytes"]:
        return "inconclusive (give two sizes, the largest at least 10x the smallest)"
    growth = large["excess"] - small["excess"]
    per_gb = growth / ((large["bytes"] - small["bytes"]) / 1e9)
    allowed = max(small["excess"] / 4, 32.0)
    state = "met" if growth <= allowed else "NOT met"
    scale = "" if large["bytes"] >= 1e9 else " (the largest file is under the issue's 1 GB)"
    return (
        f"{small['bytes'] / 1e6:,.0f} MB -> {large['bytes'] / 1e6:,.0f} MB of text: peak above "
        f"floor {small['excess']:,.0f} -> {large['excess']:,.0f} MiB, {growth:+,.0f} MiB "
        f"({per_gb:+,.1f} MiB per extra GB); memory bounded by row group: {state} (criterion: "
        f"growth <= max(25% of the smallest's, 32 MiB) = {allowed:,.0f} MiB){scale}"
    )


def main() -> None:
    """Generate the files, mask each in a child, print the table and the verdict, record them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", default="25,1024", help="text MB per file (list)")
    parser.add_argument("--row-group-rows", default="65536", help="rows per row group (list)")
    parser.add_argument("--batch-rows", type=int, default=0, help="mask_file batch_rows")
    parser.add_argument("--threads", type=int, default=1, help="polars threads (0: default)")
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--seed", type=int, default=11, help="seed of the generated records")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    sizes = sorted(float(s) for s in args.size_mb.split(","))
    if args.threads:
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    work = Path(args.dir or tempfile.mkdtemp(prefix="pii-bigfile-"))
    os.environ.setdefault("GUARDFLOW_AUDIT_PATH", str(work / "audit.jsonl"))

    import pyarrow as pa

    from guardflow.pii import PIIPolicy, mask_file, mask_table

    policy = PIIPolicy.model_validate({"free_text_columns": ["text"]})
    warm = pa.table({"id": [1], "text": ["warm-up jane@example.org 4111 1111 1111 1111"]})

    def warm_up() -> Result:
        # In the child: polars' thread pool must not start before a fork (the child would
        # wait forever on its locks), so masking first runs after the fork.
        mask_table(warm, policy)  # regexes compiled, validators imported
        return {"start_mib": rss_mib()}

    floor = in_child(warm_up)["peak_mib"]

    rows_out: list[list[str]] = []
    verdicts: list[str] = []
    for group in [int(g) for g in args.row_group_rows.split(",")]:
        batch = args.batch_rows or group
        runs: list[Result] = []
        for size in sizes:
            src, dst = work / f"in-{size:g}-{group}.parquet", work / f"out-{size:g}-{group}.parquet"
            print(f"writing {size:,.0f} MB, row groups of {group:,} rows...", flush=True)

            def generate_file(src: Path = src, size: float = size, group: int = group) -> Result:
                return {"rows": write_file(src, size, group, args.seed)[0]}

            nrows = in_child(generate_file)["rows"]

            def run(src: Path = src, dst: Path = dst, batch: int = batch) -> Result:
                start_mib = warm_up()["start_mib"]
                start = time.perf_counter()
                report = mask_file(src, dst, policy, batch_rows=batch)
                seconds = time.perf_counter() - start
                return {"seconds": seconds, "rows": report.rows_scanned, "start_mib": start_mib,
                        "bytes": report.bytes_scanned, "entities": report.total}  # fmt: skip

            print(f"masking {src.name} ({src.stat().st_size / 1e6:,.0f} MB on disk)...", flush=True)
            result = in_child(run)
            assert result["rows"] == nrows, "mask_file lost rows"
            result["excess"] = result["peak_mib"] - floor
            runs.append(result)
            mb = result["bytes"] / 1e6
            rows_out.append(
                [
                    f"{group:,}",
                    f"{batch:,}",
                    f"{nrows:,}",
                    f"{mb:,.0f}",
                    f"{src.stat().st_size / 1e6:,.0f}",
                    f"{result['entities']:,}",
                    f"{result['seconds']:.1f}",
                    f"{result['cpu_s']:.1f}",
                    f"{mb / result['cpu_s']:.2f}",
                    f"{result['start_mib']:,.0f}",
                    f"{result['peak_mib']:,.0f}",
                    f"{result['excess']:,.0f}",
                ]
            )
            print(" | ".join(rows_out[-1]), flush=True)
            if not args.keep:
                src.unlink()
                dst.unlink(missing_ok=True)
        verdicts.append(f"- row groups of {group:,} rows: {verdict(runs)}")
    header = ["row group rows", "batch rows", "rows", "text MB", "file MB", "entities", "seconds",
              "CPU s", "MB per CPU s", "RSS at start MiB", "peak RSS MiB",
              "peak - floor MiB"]  # fmt: skip
    text = "\n".join(
        [
            f"Machine: {machine()}; polars threads {args.threads or 'default'}.",
            f"Parquet files of {', '.join(f'{s:g}' for s in sizes)} MB of UTF-8 text "
            f"(generated records with planted PII, seed {args.seed}; each written in its own "
            "child), masked by `mask_file` (free-text column, replace) in a forked child; "
            "peak RSS and CPU s from `os.wait4` (whole process); RSS at start: the child's "
            "after warm-up, before `mask_file`. Floor (child after warm-up, doing nothing): "
            f"{floor:,.0f} MiB.",
            "",
            table(header, rows_out),
            "",
            *verdicts,
        ]
    )
    print(text)
    if args.dir is None and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if args.record:
        append_results("PII big file: mask_file memory (benchmarks/pii_bigfile.py)", text)
        print("\nappended to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
