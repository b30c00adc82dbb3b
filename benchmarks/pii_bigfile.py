"""PII masking of a big Parquet file: throughput and peak memory vs file and row-group size.

Generates a Parquet file of ``--size-mb`` MB of text records (the generated corpus of
``benchmarks/_pii_corpus.py``: short free-text lines with planted PII of every pattern type and
hard negatives, plus an id column), written in row groups of ``--row-group-rows`` rows (a comma
list runs each size). Each run masks the file with ``guardflow.pii.mask_file`` (text column
declared free text, default action ``replace``) in a forked child process; this process reads
the child's peak RSS from ``os.wait4`` (``ru_maxrss``: data, libraries and interpreter
included). A child that only warms up (one small masking) measures the floor. ``mask_file`` reads
``batch_rows`` rows at a time (never more than a row group); ``--batch-rows`` follows the row
group unless given.

Goal (issue 4): memory bounded by the row-group size, not the file size.

Usage:
    python benchmarks/pii_bigfile.py [--size-mb 1024] [--row-group-rows 65536,262144]
                                     [--threads 1] [--keep] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
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

    pool = [text for text, _ in generate(20_000, seed)]
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
    """Run ``fn`` in a forked child; return its result with the child's peak RSS (MiB)."""
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
    return result


def main() -> None:
    """Generate the file(s), mask each in a child, print and optionally record the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=1024, help="text MB in the file")
    parser.add_argument("--row-group-rows", default="65536", help="rows per row group (list)")
    parser.add_argument("--batch-rows", type=int, default=0, help="mask_file batch_rows")
    parser.add_argument("--threads", type=int, default=1, help="polars threads (0: default)")
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--seed", type=int, default=11, help="seed of the generated records")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
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
        return {}

    floor = in_child(warm_up)["peak_mib"]

    rows_out: list[list[str]] = []
    for group in [int(g) for g in args.row_group_rows.split(",")]:
        src, dst = work / f"in-{group}.parquet", work / f"out-{group}.parquet"
        print(f"writing {args.size_mb:,.0f} MB, row groups of {group:,} rows...", flush=True)
        nrows, _ = write_file(src, args.size_mb, group, args.seed)
        batch = args.batch_rows or group

        def run(src: Path = src, dst: Path = dst, batch: int = batch) -> Result:
            warm_up()
            start = time.perf_counter()
            report = mask_file(src, dst, policy, batch_rows=batch)
            seconds = time.perf_counter() - start
            return {"seconds": seconds, "rows": report.rows_scanned, "bytes": report.bytes_scanned,
                    "entities": report.total, "batches": report.batches}  # fmt: skip

        print(f"masking {src.name} ({src.stat().st_size / 1e6:,.0f} MB on disk)...", flush=True)
        result = in_child(run)
        assert result["rows"] == nrows, "mask_file lost rows"
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
                f"{mb / result['seconds']:.1f}",
                f"{result['peak_mib']:,.0f}",
                f"{result['peak_mib'] - floor:,.0f}",
            ]
        )
        if not args.keep:
            src.unlink()
            dst.unlink(missing_ok=True)
    header = ["row group rows", "batch rows", "rows", "text MB", "file MB", "entities", "seconds",
              "MB/s", "peak RSS MiB", "peak - floor MiB"]  # fmt: skip
    text = "\n".join(
        [
            f"Machine: {machine()}; polars threads {args.threads or 'default'}.",
            f"Parquet files of {args.size_mb:,.0f} MB of UTF-8 text (generated records with "
            f"planted PII, seed {args.seed}), masked by `mask_file` (free-text column, replace) "
            "in a forked child; "
            f"peak RSS from `os.wait4` (whole process). Floor (child after warm-up, doing "
            f"nothing): {floor:,.0f} MiB.",
            "",
            table(header, rows_out),
        ]
    )
    print(text)
    if args.record:
        append_results("PII big file: mask_file memory (benchmarks/pii_bigfile.py)", text)
        print("\nappended to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
