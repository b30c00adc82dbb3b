"""PII masking of a Parquet file with detection on 1..N processes (``mask_file(workers=N)``).

Generates one Parquet file of ``--size-mb`` MB of text records (the generated corpus of
``benchmarks/_pii_corpus.py``, every row holding PII-shaped values: the dense case, where the
per-row checks cost the most) in row groups of ``--row-group-rows`` rows, then masks it with
``workers`` = each of ``--workers`` in turn (text column free text, action ``replace``), in this
one process run. Prints wall-clock seconds, MB/s, the speed-up over ``workers=1`` and the
parallel efficiency (speed-up / workers), and checks that every output equals the
``workers=1`` one. The per-core rate does not change with workers (each process runs the same
code); what changes is how long a file takes on a machine with cores to spare.

Usage:
    python benchmarks/pii_workers.py [--size-mb 16] [--workers 1,2] [--threads 1] [--record]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from _common import append_results, machine, table
from pii_bigfile import write_file


def main() -> None:
    """Write the file, mask it with each worker count, print and optionally record the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=16, help="MB of text in the file")
    parser.add_argument("--row-group-rows", type=int, default=32_768, help="rows per row group")
    parser.add_argument("--workers", default="", help="comma list (default: 1 up to the cores)")
    parser.add_argument("--threads", type=int, default=1, help="polars threads per process")
    parser.add_argument("--seed", type=int, default=11, help="seed of the generated records")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)  # inherited by the worker processes
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("GUARDFLOW_AUDIT_PATH", f"{tempfile.mkdtemp()}/audit.jsonl")
    cores = len(os.sched_getaffinity(0))
    default = [1, *range(2, cores + 1)]
    counts = [int(w) for w in args.workers.split(",")] if args.workers else default

    import pyarrow.parquet as pq

    from guardflow.pii import PIIPolicy, _checks, mask_file

    work = Path(tempfile.mkdtemp(prefix="guardflow-pii-workers-"))
    source = work / "in.parquet"
    print(f"writing {args.size_mb:g} MB of records...", file=sys.stderr, flush=True)
    rows, nbytes = write_file(source, args.size_mb, args.row_group_rows, args.seed)
    policy = PIIPolicy.model_validate({"free_text_columns": ["text"]})
    mask_file(source, work / "warm.parquet", policy, batch_rows=1_000)  # imports, regexes
    mb = nbytes / 1e6
    results: dict[int, float] = {}
    reference = None
    same: dict[int, bool] = {}
    for workers in counts:
        print(f"masking with workers={workers}...", file=sys.stderr, flush=True)
        out = work / f"out{workers}.parquet"
        # Every run starts with empty phone caches, as new worker processes do: a run after
        # the first would otherwise find this process's caches full of the same file's numbers.
        for cached in (_checks._phone_parse, _checks.phone_strong, _checks.phone_regional):
            cached.cache_clear()
        start = time.perf_counter()
        mask_file(source, out, policy, workers=workers)
        results[workers] = time.perf_counter() - start
        masked = pq.read_table(out)
        if reference is None:
            reference = masked
        same[workers] = masked.equals(reference)
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base = results[counts[0]]
    header = ["workers", "seconds", "MB/s", "speed-up", "efficiency", "output = first run's"]
    body = [
        [
            str(w),
            f"{s:.2f}",
            f"{mb / s:.2f}",
            f"{base / s:.2f}x",
            f"{base / s / w * counts[0]:.0%}",
            "yes" if same[w] else "NO",
        ]
        for w, s in results.items()
    ]
    text = "\n".join(
        [
            f"Machine: {machine()}; polars threads {args.threads} per process; {cores} cores "
            "this process may use.",
            f"One Parquet file: {rows:,} generated records, {mb:.1f} MB of UTF-8 text, row groups "
            f"of {args.row_group_rows:,} rows; `mask_file` (free text, replace), wall-clock, one "
            "run per worker count, all in one process run. Peak RSS: this process "
            f"{own_peak:,.0f} MiB, the largest worker process {children_peak:,.0f} MiB.",
            "",
            table(header, body),
            "",
            "- speed-up: the first row's seconds / this row's; efficiency: speed-up per worker. "
            "Per core the rate is the single-process one; workers divide a file's wall-clock "
            "time on a machine with idle cores.",
        ]
    )
    print(text)
    if args.record:
        append_results("PII masking with worker processes (benchmarks/pii_workers.py)", text)
        print("\nappended to benchmarks/RESULTS.md")
    if not all(same.values()):
        sys.exit("outputs differ between worker counts")


if __name__ == "__main__":
    main()
