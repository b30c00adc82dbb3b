"""Vault reads and transit tokenization against a real OpenBao dev server, in one process and run.

Against one ``bao server -dev`` process (started by
:class:`~guardflow.testing.vault_server.VaultServer`), this times:

1. **Cached reads.** ``--threads`` threads, started together, each read the same KV v2 secret
   ``--reads`` times:
   - guardflow: one :class:`~guardflow.secrets.VaultClient` shared by every thread, cold cache at
     the start of each timed run (so the single-flight first read is part of the timing);
   - plain hvac: one ``hvac.Client`` per thread (a ``requests`` session is not thread-safe), each
     read a ``read_secret_version`` call, as a task that fetches its credential would do.
2. **Transit tokenization** of ``--values`` values drawn like a real column (``--distinct``
   distinct values, the rest repeats of them) with a convergent key:
   - guardflow: ``TransitKey.encrypt_many`` (duplicates sent once, batches of 200, 4 in flight);
   - plain hvac: one ``encrypt_data`` request per value, in sequence. It is timed on ``--sample``
     values first; when the whole column would take longer than ``--per-value-budget`` seconds
     its rate is extrapolated from the sample, and the output says so; otherwise it runs on every
     value.
   The two must give the same token for the same value (convergent encryption, same key version
   and context): the script checks it on the values both encrypted.

HTTP requests are counted for each contender (every ``requests`` send in the process while it
runs). guardflow's contenders are warmed up once (untimed) and timed ``--repeats`` times; medians
are reported. Goals printed beside the results: transit at least 50x one request per value and at
least 50,000 values/s.

Usage:
    python benchmarks/vault.py [--threads N] [--reads N] [--values N] [--quick] [--record]
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hvac
import requests.adapters
from _common import append_results, machine, table

from guardflow.secrets import SecretCache, VaultClient
from guardflow.testing.vault_server import VaultServer

GOAL_TRANSIT_RATIO, GOAL_TRANSIT_RATE = 50.0, 50_000.0
SECRET_PATH, SECRET_KEY = "bench/app", "token"
TRANSIT_KEY, CONTEXT = "bench-tokens", "bench-column"


class RequestCounter:
    """Counts every HTTP request ``requests`` sends in this process (hvac's transport)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._send = requests.adapters.HTTPAdapter.send

    def install(self) -> None:
        """Wrap ``HTTPAdapter.send`` so each request adds one to :attr:`count`."""
        original, counter = self._send, self

        def send(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.count += 1
            return original(adapter, request, *args, **kwargs)

        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]

    @contextmanager
    def measure(self) -> Iterator[list[int]]:
        """Yield a one-item list that holds the number of requests sent inside the block."""
        box = [0]
        start = self.count
        try:
            yield box
        finally:
            box[0] = self.count - start


def _threads(n: int, body: Callable[[int], None]) -> float:
    """Run ``body(i)`` in ``n`` threads released together; return the wall time from release."""
    ready = threading.Barrier(n + 1)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        ready.wait()
        try:
            body(i)
        except BaseException as exc:  # surfaced below: a failed read invalidates the run
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for w in workers:
        w.start()
    ready.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"a reader failed ({type(errors[0]).__name__}): benchmark invalid")
    return elapsed


def bench_reads(
    server: VaultServer, args: argparse.Namespace, counter: RequestCounter
) -> dict[str, Any]:
    """Part 1: guardflow's cached, shared client vs one plain hvac client per thread."""
    expected = f"bench-{random.getrandbits(64):016x}"
    server.client().secrets.kv.v2.create_or_update_secret(
        path=SECRET_PATH, secret={SECRET_KEY: expected}, mount_point="secret"
    )
    total = args.threads * args.reads
    config = server.config()

    def ours() -> tuple[float, int]:
        with VaultClient(config, cache=SecretCache()) as client, counter.measure() as sent:

            def body(_i: int) -> None:
                for _ in range(args.reads):
                    if client.read_key(SECRET_PATH, SECRET_KEY).reveal() != expected:
                        raise ValueError("wrong value")

            elapsed = _threads(args.threads, body)
        return elapsed, sent[0]

    def plain() -> tuple[float, int]:
        clients = [
            hvac.Client(url=server.url, token=server.root_token) for _ in range(args.threads)
        ]
        with counter.measure() as sent:

            def body(i: int) -> None:
                kv = clients[i].secrets.kv.v2
                for _ in range(args.reads):
                    answer = kv.read_secret_version(
                        path=SECRET_PATH, mount_point="secret", raise_on_deleted_version=True
                    )
                    if answer["data"]["data"][SECRET_KEY] != expected:
                        raise ValueError("wrong value")

            elapsed = _threads(args.threads, body)
        for c in clients:
            c.adapter.close()
        return elapsed, sent[0]

    ours()  # warm-up, untimed: imports and the first login are not throughput
    runs: dict[str, list[tuple[float, int]]] = {"ours": [], "plain": []}
    for _ in range(args.repeats):  # interleaved so drift hits both alike
        runs["ours"].append(ours())
        runs["plain"].append(plain())
    return {
        name: {
            "seconds": statistics.median(r[0] for r in results),
            "requests": statistics.median(r[1] for r in results),
            "ops": total,
        }
        for name, results in runs.items()
    }


def _column(n: int, distinct: int, seed: int = 7) -> list[str]:
    """``n`` e-mail-like values: ``distinct`` different ones, the rest repeats, shuffled."""
    rng = random.Random(seed)
    pool = [f"customer{i:07d}.{rng.getrandbits(24):06x}@example.org" for i in range(distinct)]
    values = pool + rng.choices(pool, k=max(n - distinct, 0))
    rng.shuffle(values)
    return values[:n]


def bench_transit(
    server: VaultServer, args: argparse.Namespace, counter: RequestCounter
) -> dict[str, Any]:
    """Part 2: ``TransitKey.encrypt_many`` vs one ``encrypt_data`` request per value."""
    values = _column(args.values, min(args.distinct, args.values))
    result: dict[str, Any] = {"values": len(values), "distinct": len(set(values))}
    with VaultClient(server.config(), cache=SecretCache()) as client:
        key = client.transit(TRANSIT_KEY, convergent=True)
        key.ensure_key()
        key.encrypt_many(values[: args.batch_size * args.concurrency * 2], context=CONTEXT)
        timings, sent_counts, tokens = [], [], []
        for _ in range(args.repeats):
            with counter.measure() as sent:
                start = time.perf_counter()
                tokens = key.encrypt_many(
                    values,
                    context=CONTEXT,
                    batch_size=args.batch_size,
                    concurrency=args.concurrency,
                )
                timings.append(time.perf_counter() - start)
            sent_counts.append(sent[0])
        if len(tokens) != len(values):
            raise SystemExit("encrypt_many returned the wrong number of tokens: benchmark invalid")
        by_value = dict(zip(values, tokens, strict=True))
        if any(by_value[v] != t for v, t in zip(values, tokens, strict=True)):
            raise SystemExit("a repeated value got two tokens: benchmark invalid")
        probe = values[:: max(len(values) // 500, 1)]
        back = key.decrypt_many([by_value[v] for v in probe], context=CONTEXT)
        if back != probe:
            raise SystemExit("decrypt_many did not give the values back: benchmark invalid")
    result["ours"] = {
        "seconds": statistics.median(timings),
        "requests": statistics.median(sent_counts),
    }

    plain_client = hvac.Client(url=server.url, token=server.root_token)
    context = base64.b64encode(CONTEXT.encode()).decode()

    def per_value(chunk: list[str]) -> list[str]:
        out = []
        for value in chunk:
            answer = plain_client.secrets.transit.encrypt_data(
                name=TRANSIT_KEY,
                plaintext=base64.b64encode(value.encode()).decode(),
                context=context,
            )
            out.append(answer["data"]["ciphertext"])
        return out

    per_value(values[:5])  # warm-up: the session's first connection
    sample = values[: args.sample]
    with counter.measure() as sent:
        start = time.perf_counter()
        plain_tokens = per_value(sample)
        elapsed = time.perf_counter() - start
    done, requests_sent = len(sample), sent[0]
    projected = elapsed / done * len(values)
    rest = values[done:]
    if rest and projected <= args.per_value_budget:
        with counter.measure() as sent:
            start = time.perf_counter()
            plain_tokens += per_value(rest)
            elapsed += time.perf_counter() - start
        done, requests_sent = len(values), requests_sent + sent[0]
    if plain_tokens != [by_value[v] for v in values[:done]]:
        raise SystemExit("plain hvac and encrypt_many gave different tokens: benchmark invalid")
    result["plain"] = {
        "seconds": elapsed,
        "requests": requests_sent,
        "timed": done,
        "extrapolated": done < len(values),
        "projected": projected,
    }
    plain_client.adapter.close()
    return result


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(
    args: argparse.Namespace, where: str, reads: dict[str, Any], transit: dict[str, Any]
) -> str:
    """The Markdown section printed and, with ``--record``, appended to RESULTS.md."""
    read_rate = {k: v["ops"] / v["seconds"] for k, v in reads.items()}
    read_ratio = read_rate["ours"] / read_rate["plain"]
    read_rows = [
        [
            label,
            f"{reads[k]['ops']:,}",
            f"{reads[k]['seconds']:.3f}",
            f"{read_rate[k]:,.0f}",
            f"{reads[k]['requests']:,.0f}",
            f"{read_rate[k] / read_rate['plain']:.1f}x",
        ]
        for k, label in (
            ("ours", "guardflow VaultClient, shared, cached"),
            ("plain", "plain hvac, one client per thread"),
        )
    ]
    n = transit["values"]
    ours_rate = n / transit["ours"]["seconds"]
    plain = transit["plain"]
    plain_rate = plain["timed"] / plain["seconds"]
    ratio = ours_rate / plain_rate
    transit_rows = [
        [
            "guardflow TransitKey.encrypt_many",
            f"{n:,}",
            f"{transit['ours']['seconds']:.2f}",
            f"{ours_rate:,.0f}",
            f"{transit['ours']['requests']:,.0f}",
            f"{ratio:.1f}x",
        ],
        [
            "plain hvac, one encrypt_data per value",
            f"{plain['timed']:,}",
            f"{plain['seconds']:.2f}",
            f"{plain_rate:,.0f}",
            f"{plain['requests']:,}",
            "1.0x",
        ],
    ]
    header = ["contender", "ops timed", "seconds", "ops/s", "HTTP requests", "vs plain hvac"]
    if plain["extrapolated"]:
        how = (
            f"- one request per value was timed on {plain['timed']:,} values and its rate "
            f"extrapolated: all {n:,} would take ~{plain['projected']:.0f} s, over the "
            f"{args.per_value_budget:.0f} s budget."
        )
    else:
        how = f"- one request per value ran on all {n:,} values (not extrapolated)."
    return "\n".join(
        [
            f"Machine: {where}. OpenBao dev server (in-memory storage) on 127.0.0.1.",
            f"Median of {args.repeats} interleaved run(s) for guardflow's contenders and the "
            "plain hvac reads.",
            "",
            f"Cached reads: {args.threads} threads x {args.reads} reads of one KV v2 secret, "
            "cold cache at the start of each run.",
            "",
            table(header, read_rows),
            "",
            f"- guardflow cached reads vs plain hvac: {read_ratio:,.0f}x the reads/s, "
            f"{reads['ours']['requests']:,.0f} HTTP request(s) instead of "
            f"{reads['plain']['requests']:,.0f}.",
            "",
            f"Transit tokenization (convergent key, context set): {n:,} values, "
            f"{transit['distinct']:,} distinct; batches of {args.batch_size}, "
            f"{args.concurrency} in flight.",
            "",
            table(header, transit_rows),
            "",
            f"- encrypt_many vs one request per value: {ratio:.1f}x "
            f"(goal >= {GOAL_TRANSIT_RATIO:.0f}x: {_verdict(ratio >= GOAL_TRANSIT_RATIO)})",
            f"- encrypt_many: {ours_rate:,.0f} values/s "
            f"(goal >= {GOAL_TRANSIT_RATE:,.0f}: {_verdict(ours_rate >= GOAL_TRANSIT_RATE)})",
            how,
            "- both gave the same token for every value both encrypted (checked), and "
            "decrypt_many gave a sample back.",
        ]
    )


def main() -> None:
    """Parse arguments, run both parts, print and optionally record the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=100, help="reader threads (100)")
    parser.add_argument("--reads", type=int, default=50, help="reads per thread (50)")
    parser.add_argument("--values", type=int, default=100_000, help="values to tokenize")
    parser.add_argument("--distinct", type=int, default=70_000, help="distinct values among them")
    parser.add_argument("--batch-size", type=int, default=200, help="transit batch size (200)")
    parser.add_argument("--concurrency", type=int, default=4, help="transit batches in flight")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per contender")
    parser.add_argument("--sample", type=int, default=2_000, help="values timed one per request")
    parser.add_argument(
        "--per-value-budget",
        type=float,
        default=120.0,
        help="run one request per value on every value when that takes at most this many s",
    )
    parser.add_argument("--quick", action="store_true", help="small run for a smoke test")
    parser.add_argument("--record", action="store_true", help="append the results to RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.threads, args.reads, args.values, args.distinct = 20, 10, 5_000, 3_500
        args.repeats, args.sample = 1, 500

    where = machine()  # load average before our own server adds to it
    counter = RequestCounter()
    counter.install()
    with tempfile.TemporaryDirectory(prefix="guardflow-bench-vault-") as tmp:
        server = VaultServer(Path(tmp))
        print("starting OpenBao dev server...", flush=True)
        server.start()
        try:
            print(f"part 1: {args.threads} threads x {args.reads} reads...", flush=True)
            reads = bench_reads(server, args, counter)
            print(f"part 2: transit tokenization of {args.values:,} values...", flush=True)
            transit = bench_transit(server, args, counter)
        finally:
            server.stop()
    text = report(args, where, reads, transit)
    print(text)
    if args.record:
        append_results("Vault: cached reads and transit tokenization (benchmarks/vault.py)", text)
        print("\nappended to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
