"""Concurrent conflicting decisions on one gate resolve exactly once (threads and processes).

Each test runs on SQLite (one file, ``BEGIN IMMEDIATE``) and on a real PostgreSQL server
(``SELECT ... FOR UPDATE``), the store several workers share.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from guardflow.errors import GateClosedError
from guardflow.gates.models import GatePolicy, GateRecord, GateStatus
from guardflow.gates.store import GateStore

QUORUM = 3


def _record() -> GateRecord:
    return GateRecord(
        id="race",
        subject="Race?",
        policy=GatePolicy(
            options=["approve", "hold", "reject"],
            required_approvals=QUORUM,
            required_rejections=QUORUM,
        ),
        created_at=datetime.now(timezone.utc),
    )


def _option(i: int) -> str:
    return ("approve", "hold", "reject")[i % 3]


def _vote(store: GateStore, reviewer: str, option: str) -> tuple[str, str, str]:
    try:
        rec = store.decide("race", reviewer=reviewer, option=option, channel="api")
    except GateClosedError:
        return (reviewer, option, "closed")
    return (reviewer, option, rec.status.value)


def _process_voter(url: str, start: Any, first: int, count: int, out: Any) -> None:
    """Runs in a spawned process: wait until all processes are up, then vote from 8 threads."""
    store = GateStore(url)
    store.get("race")  # engine and connection ready before the race starts
    start.wait()
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(_vote, store, f"r{i:03d}", _option(i)) for i in range(first, first + count)
        ]
        out.put([f.result() for f in futures])


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        value = f"sqlite:///{tmp_path / 'race.db'}"
    else:
        value = request.getfixturevalue("postgres_url")
    yield value
    GateStore(value).dispose()


def _assert_exactly_one_resolution(store: GateStore, results: list[tuple[str, str, str]]) -> None:
    rec = store.get("race")
    history = store.history("race")
    # Exactly one resolution, to an option that reached quorum with exactly QUORUM votes.
    assert rec.status is GateStatus.RESOLVED
    assert [e["kind"] for e in history].count("resolved") == 1
    tally = rec.tally()
    assert tally[rec.outcome or ""] == QUORUM
    assert all(n < QUORUM for opt, n in tally.items() if opt != rec.outcome)
    # The stored votes are exactly the calls that returned a record; every other call was refused.
    accepted = {(r, o) for r, o, s in results if s != "closed"}
    assert {(v.reviewer, v.option) for v in rec.votes} == accepted
    assert len([e for e in history if e["kind"] == "voted"]) == len(accepted)
    # Exactly one caller saw its own vote resolve the gate: the last stored vote.
    resolvers = [(r, o) for r, o, s in results if s == "resolved"]
    assert resolvers == [(rec.votes[-1].reviewer, rec.votes[-1].option)]
    assert rec.votes[-1].option == rec.outcome
    # Every vote counted was recorded no later than the resolution.
    assert all(v.decided_at <= (rec.resolved_at or v.decided_at) for v in rec.votes)
    assert len(results) == len({r for r, _, _ in results})


def test_50_threads_conflicting_decisions_resolve_exactly_once(url: str) -> None:
    store = GateStore(url)
    store.create(_record())
    barrier = threading.Barrier(50)

    def voter(i: int) -> tuple[str, str, str]:
        barrier.wait()
        return _vote(store, f"r{i:03d}", _option(i))

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(voter, range(50)))
    assert len(results) == 50
    assert sum(1 for *_, s in results if s == "closed") >= 50 - (3 * (QUORUM - 1) + 1)
    _assert_exactly_one_resolution(store, results)


def test_4_processes_conflicting_decisions_resolve_exactly_once(url: str) -> None:
    store = GateStore(url)
    store.create(_record())
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(5)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process_voter, args=(url, start, p * 12, 12, out)) for p in range(4)
    ]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)
    results = [row for _ in procs for row in out.get(timeout=300)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert len(results) == 48
    _assert_exactly_one_resolution(store, results)
