"""Inference throughput against a real MLflow scoring server, in one process and one run.

Against one ``mlflow models serve`` process (started by the pytest plugin's
:class:`~guardflow.testing.model_servers.MLflowModelServer`), this times:

- guardflow ``run_inference``: the whole step (batching, retries armed, checkpoints, Parquet output
  written atomically, audit event);
- guardflow ``AsyncInferenceClient`` driven by an ``asyncio.gather`` loop;
- a plain ``httpx.AsyncClient`` loop at the same batch size, concurrency and request body
  (goal: guardflow reaches at least 0.9x its rows/s);
- one request per row in sequence, ``requests.post`` in a ``for`` loop as tutorials write it
  (goal: guardflow at least 30x faster). It is timed on ``--per-row-rows`` rows and its rows/s
  extrapolated, which the output says.

Every contender is warmed up once (untimed), then timed ``--repeats`` times, interleaved; medians
are reported. The table and ratios are printed and appended to
benchmarks/RESULTS.md.

Usage:
    python benchmarks/inference.py [--rows N] [--batch-size N] [--concurrency N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from _common import append_results, machine, seconds, table

from guardflow.audit import MemoryAuditSink
from guardflow.identity import RunIdentity
from guardflow.inference import AsyncInferenceClient, InferenceConfig, run_inference
from guardflow.inference.config import BatchPolicy
from guardflow.testing.model_servers import FEATURES, MLflowModelServer, sample_rows

GOAL_VS_PLAIN, GOAL_VS_PER_ROW = 0.9, 30.0


def _batches(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def _plain_httpx(url: str, rows: list[dict[str, Any]], size: int, conc: int) -> int:
    """What a careful user writes by hand: pooled client, semaphore, dataframe_split bodies."""
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        semaphore = asyncio.Semaphore(conc)

        async def one(batch: list[dict[str, Any]]) -> list[Any]:
            body = {
                "dataframe_split": {
                    "columns": list(FEATURES),
                    "data": [[row[f] for f in FEATURES] for row in batch],
                }
            }
            async with semaphore:
                response = await client.post("/invocations", json=body)
            response.raise_for_status()
            predictions: list[Any] = response.json()["predictions"]
            return predictions

        results = await asyncio.gather(*(one(b) for b in _batches(rows, size)))
    return sum(len(r) for r in results)


async def _guardflow_client(config: InferenceConfig, rows: list[dict[str, Any]]) -> int:
    size, conc = config.batching.batch_size, config.batching.concurrency
    async with AsyncInferenceClient(config.endpoint, retry=config.retry) as client:
        semaphore = asyncio.Semaphore(conc)

        async def one(batch: list[dict[str, Any]]) -> int:
            async with semaphore:
                return len((await client.predict_batch(batch)).predictions)

        counts = await asyncio.gather(*(one(b) for b in _batches(rows, size)))
    return sum(counts)


def _per_row_sequential(url: str, rows: list[dict[str, Any]]) -> int:
    """The tutorial loop: one blocking request per row, no session, no batching."""
    import requests

    predictions = []
    for row in rows:
        response = requests.post(f"{url}/invocations", json={"dataframe_records": [row]})
        response.raise_for_status()
        predictions.append(response.json()["predictions"][0])
    return len(predictions)


def _check(count: int, expected: int, what: str) -> None:
    if count != expected:
        sys.exit(f"{what} returned {count} predictions for {expected} rows: benchmark invalid")


def main() -> None:
    """Parse arguments, run every contender, print and record the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per timed run")
    parser.add_argument("--batch-size", type=int, default=100, help="rows per request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per contender")
    parser.add_argument("--per-row-rows", type=int, default=300, help="rows for the per-row loop")
    parser.add_argument("--workers", type=int, default=2, help="MLflow server workers")
    parser.add_argument("--quick", action="store_true", help="small run for a smoke test")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats, args.per_row_rows = 2_000, 1, 50

    where = machine()  # load average before our own server adds to it
    features_only = sample_rows(args.rows)
    keyed = sample_rows(args.rows, key_column="id")
    per_row = features_only[: args.per_row_rows]
    with tempfile.TemporaryDirectory(prefix="guardflow-bench-") as tmp:
        server = MLflowModelServer(Path(tmp) / "server", workers=args.workers)
        print(f"starting MLflow scoring server ({args.workers} workers)...", flush=True)
        with server:
            batching = BatchPolicy(batch_size=args.batch_size, concurrency=args.concurrency)
            config = InferenceConfig(endpoint=server.endpoint(), batching=batching)
            keyed_config = config.model_copy(update={"key_column": "id"})
            runs = iter(range(1_000_000))

            def ours_step() -> None:
                n = next(runs)
                summary = run_inference(
                    keyed,
                    str(Path(tmp) / f"out-{n}.parquet"),
                    keyed_config,
                    identity=RunIdentity(pipeline="bench", run_id=f"run-{n}"),
                    audit_sink=MemoryAuditSink(),
                )
                _check(summary.succeeded, args.rows, "run_inference")

            def ours_client() -> None:
                _check(asyncio.run(_guardflow_client(config, features_only)), args.rows, "client")

            def plain() -> None:
                count = asyncio.run(
                    _plain_httpx(server.url, features_only, args.batch_size, args.concurrency)
                )
                _check(count, args.rows, "plain httpx")

            # Warm-up, untimed: one-time costs (imports such as pyarrow, the server's first
            # requests) are not throughput, and only guardflow's step would pay them.
            warm = max(args.batch_size * args.concurrency * 2, 1)
            run_inference(
                keyed[:warm],
                str(Path(tmp) / "warm-up.parquet"),
                keyed_config,
                audit_sink=MemoryAuditSink(),
            )
            asyncio.run(_guardflow_client(config, features_only[:warm]))
            asyncio.run(_plain_httpx(server.url, features_only[:warm], args.batch_size, 1))
            _per_row_sequential(server.url, per_row[:5])
            timings: dict[str, list[float]] = {"step": [], "client": [], "plain": []}
            for _ in range(args.repeats):  # interleaved so drift hits every contender alike
                for name, fn in (("step", ours_step), ("client", ours_client), ("plain", plain)):
                    timings[name].append(seconds(fn))
            per_row_s = seconds(
                lambda: _check(_per_row_sequential(server.url, per_row), len(per_row), "per-row")
            )

    report = _report(args, where, timings, per_row_s)
    print(report)
    if not args.no_record:
        append_results("Inference throughput (benchmarks/inference.py)", report)
        print("\nappended to benchmarks/RESULTS.md")


def _report(
    args: argparse.Namespace, where: str, timings: dict[str, list[float]], per_row_s: float
) -> str:
    rate = {k: args.rows / statistics.median(v) for k, v in timings.items()}
    rate["per_row"] = args.per_row_rows / per_row_s
    labels = {
        "step": "guardflow run_inference (Parquet out, checkpoints, audit)",
        "client": "guardflow AsyncInferenceClient + gather",
        "plain": "plain httpx.AsyncClient loop (baseline)",
        "per_row": "one request per row, in sequence (requests.post)",
    }
    rows = []
    for key, label in labels.items():
        timed = args.per_row_rows if key == "per_row" else args.rows
        elapsed = per_row_s if key == "per_row" else statistics.median(timings[key])
        rows.append(
            [
                label,
                f"{timed:,}",
                f"{elapsed:.2f}",
                f"{rate[key]:,.0f}",
                f"{rate[key] / rate['plain']:.2f}x",
            ]
        )
    vs_plain, client_vs_plain = rate["step"] / rate["plain"], rate["client"] / rate["plain"]
    vs_row = rate["step"] / rate["per_row"]
    verdict = {True: "met", False: "NOT met"}
    return "\n".join(
        [
            f"Machine: {where}. MLflow scoring server with {args.workers} worker(s) on 127.0.0.1.",
            f"Rows {args.rows:,}, batch size {args.batch_size}, concurrency {args.concurrency}, "
            f"median of {args.repeats} interleaved run(s).",
            "",
            table(["contender", "rows timed", "seconds", "rows/s", "vs plain httpx"], rows),
            "",
            f"- run_inference vs plain httpx loop: {vs_plain:.2f}x "
            f"(goal >= {GOAL_VS_PLAIN}x: {verdict[vs_plain >= GOAL_VS_PLAIN]}); "
            f"AsyncInferenceClient alone: {client_vs_plain:.2f}x",
            f"- run_inference vs one request per row: {vs_row:.1f}x "
            f"(goal >= {GOAL_VS_PER_ROW:.0f}x: {verdict[vs_row >= GOAL_VS_PER_ROW]})",
            f"- the per-row loop was timed on {args.per_row_rows:,} rows and its rows/s "
            f"extrapolated (it would take ~{args.rows / rate['per_row']:.0f} s for all "
            f"{args.rows:,}).",
        ]
    )


if __name__ == "__main__":
    main()
