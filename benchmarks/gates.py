"""Gates: 200 waiting Airflow approvals hold no worker slot; decision-to-resume vs ApprovalOperator.

A real Airflow 3.3 deployment is started in subprocesses of this interpreter (run it with
``.venv-airflow/bin/python``): api-server, scheduler (LocalExecutor, ``--parallelism`` slots,
4 by default so that held slots would show at once), triggerer and dag-processor, with a
temporary AIRFLOW_HOME and a SQLite metadata database. Two DAGs of the same shape, one task
mapped over ``--items`` items, run side by side:

- ``bench_gates_guardflow``: ``ApprovalGateOperator`` (deferrable; its ``GateTrigger`` polls the
  gate store every ``--poll-interval`` seconds in the triggerer);
- ``bench_gates_native``: Airflow's ``airflow.providers.standard.operators.hitl.ApprovalOperator``
  (on 3.3 it parks the task in ``awaiting_input``; the REST response resumes it directly, no
  trigger, no polling).

Counted, not timed: once every item waits, the task instance states per DAG, the executor's
occupied slots (task instances running or queued), the worker processes actually running a task
(LocalExecutor workers with a live child) and the default pool's occupied slots, sampled
``--samples`` times; then a probe DAG of ``parallelism`` tasks must run all at once while the gates
keep waiting. Timed: ``--decisions`` decisions per side, alternating sides, one at a time: ours
through ``Gate.decide`` on the gate store (channel ``cli``, what ``guardflow gates approve`` does),
native through ``PATCH .../taskInstances/gate/{i}/hitlDetails``; the time is from just before the
decision call to the task instance's ``end_date`` (success), both clocks of this machine.

Usage:
    .venv-airflow/bin/python benchmarks/gates.py [--items 200] [--decisions 20]
        [--poll-interval 1.0] [--parallelism 4] [--record] [--keep]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from collections import Counter
from datetime import datetime, timezone
from functools import partial
from typing import Any

from _airflow_cluster import AirflowCluster
from _common import append_results, machine, table

OURS, NATIVE, PROBE = "bench_gates_guardflow", "bench_gates_native", "bench_gates_probe"
TASK = "gate"

OURS_DAG = """
from airflow.sdk import DAG
from guardflow_airflow.operators.gates import ApprovalGateOperator

with DAG(dag_id="{dag_id}", schedule=None, catchup=False):
    ApprovalGateOperator.partial(
        task_id="{task}",
        subject="Review item",
        policy={{"poll_interval_s": {poll}, "expires_after_s": 86400}},
        poll_interval={poll},
    ).expand(body=[f"Item {{i}}" for i in range({items})])
"""

NATIVE_DAG = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.hitl import ApprovalOperator

with DAG(dag_id="{dag_id}", schedule=None, catchup=False):
    ApprovalOperator.partial(task_id="{task}", subject="Review item").expand(
        body=[f"Item {{i}}" for i in range({items})]
    )
"""

PROBE_DAG = """
import time
from airflow.sdk import DAG, task

with DAG(dag_id="{dag_id}", schedule=None, catchup=False):
    @task
    def work(i):
        time.sleep({seconds})
        return i

    work.expand(i=list(range({tasks})))
"""

WAITING = {OURS: "deferred", NATIVE: "awaiting_input"}
HELD = ("running", "queued")


def utc(text: str) -> datetime:
    """Parse an Airflow REST timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def count_slots(cluster: AirflowCluster, runs: dict[str, str], samples: int) -> dict[str, Any]:
    """Sample states, executor slots, busy worker processes and pool occupancy while gates wait."""
    worst: dict[str, Any] = {"held": {d: 0 for d in runs}, "busy_workers": 0, "pool": 0}
    last: dict[str, Counter[str]] = {}
    cpu_start, wall_start = cluster.cpu_seconds(), time.perf_counter()
    for _ in range(samples):
        for dag_id, run_id in runs.items():
            last[dag_id] = cluster.states(dag_id, run_id, TASK)
            held = sum(last[dag_id].get(s, 0) for s in HELD)
            worst["held"][dag_id] = max(worst["held"][dag_id], held)
        worst["busy_workers"] = max(worst["busy_workers"], cluster.task_processes())
        pool = cluster.client.get("/pools/default_pool").json()
        worst["pool"] = max(worst["pool"], int(pool.get("occupied_slots", 0)))
        worst["pool_detail"] = {
            k: pool.get(k) for k in ("slots", "occupied_slots", "running_slots", "deferred_slots")
        }
        time.sleep(1.0)
    wall = time.perf_counter() - wall_start
    cpu_end = cluster.cpu_seconds()
    worst["cpu_pct"] = {k: 100 * (cpu_end[k] - cpu_start[k]) / wall for k in cpu_start}
    worst["window_s"] = wall
    worst["states"] = {d: dict(c) for d, c in last.items()}
    return worst


def run_probe(cluster: AirflowCluster, parallelism: int) -> dict[str, Any]:
    """Run ``parallelism`` sleeping tasks; return the most seen running at once and the time."""
    start = time.perf_counter()
    run_id = cluster.trigger(PROBE, "probe")
    peak = 0

    def done() -> bool:
        nonlocal peak
        states = cluster.states(PROBE, run_id)
        peak = max(peak, states.get("running", 0))
        return states.get("success", 0) == parallelism

    cluster.wait(done, 300, "the probe DAG", step=0.25)
    return {"peak_running": peak, "seconds": time.perf_counter() - start}


def decide_ours(gate: Any, gate_id: str) -> None:
    """Approve one guardflow gate in the store (what `guardflow gates approve` does)."""
    gate.decide(gate_id, reviewer="bench-reviewer", option="approve", channel="cli")


def decide_native(cluster: AirflowCluster, run_id: str, map_index: int) -> None:
    """Approve one native HITL task instance through the REST API."""
    response = cluster.client.patch(
        f"/dags/{NATIVE}/dagRuns/{run_id}/taskInstances/{TASK}/{map_index}/hitlDetails",
        json={"chosen_options": ["Approve"]},
    )
    response.raise_for_status()


def time_decision(
    cluster: AirflowCluster, dag_id: str, run_id: str, map_index: int, decide: Any
) -> dict[str, float]:
    """Seconds from just before the decision call to the TI's scheduled, queued and end times.

    ``scheduled_when`` is when Airflow learnt of the decision (the REST handler for the native
    operator, the triggerer's event for ours); ``queued_when`` when the scheduler handed the
    resumed task to the executor; ``end_date`` when ``execute_complete`` finished (success).
    """
    decided_at = datetime.now(timezone.utc)
    decide()

    def finished() -> dict[str, Any] | None:
        ti = cluster.task_instance(dag_id, run_id, TASK, map_index)
        if ti["state"] in ("failed", "skipped", "upstream_failed"):
            raise RuntimeError(f"{dag_id}[{map_index}] ended {ti['state']}, not success")
        return ti if ti["state"] == "success" else None

    ti = cluster.wait(finished, 120, f"{dag_id}[{map_index}] to succeed", step=0.05)
    return {
        key: (utc(ti[field]) - decided_at).total_seconds()
        for key, field in (
            ("scheduled", "scheduled_when"),
            ("queued", "queued_when"),
            ("success", "end_date"),
        )
    }


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(0.95 * len(ordered)) - 1))]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start Airflow, open every gate, count slots, probe, time decisions; return the figures."""
    sides = [d for d, name in ((OURS, "ours"), (NATIVE, "native")) if name in args.sides]
    fmt = {"task": TASK, "items": args.items, "poll": args.poll_interval}
    sources = {OURS: OURS_DAG, NATIVE: NATIVE_DAG}
    dags = {f"{d}.py": sources[d].format(dag_id=d, **fmt) for d in sides}
    dags["probe.py"] = PROBE_DAG.format(dag_id=PROBE, seconds=5, tasks=args.parallelism)
    env = {
        # A random key for this run only; links are never issued (no notifiers, no base URL use).
        "GUARDFLOW_GATES_SIGNING_KEY": secrets.token_hex(32),
    }
    cluster = AirflowCluster(dags, parallelism=args.parallelism, extra_env=env, keep=args.keep)
    # The gate store lives in AIRFLOW_HOME, so it goes when the deployment is stopped.
    store_url = f"sqlite:///{cluster.home / 'gates.db'}"
    env["GUARDFLOW_GATES_DB"] = cluster.env["GUARDFLOW_GATES_DB"] = store_url
    os.environ.update(env)
    figures: dict[str, Any] = {"store": "SQLite", "airflow_db": "SQLite"}
    with cluster as c:
        print(f"airflow up at {c.url} (home {c.home})", flush=True)
        c.wait(lambda: {*sides, PROBE} <= c.dag_ids(), 300, "the DAGs to be parsed")
        start = time.perf_counter()
        runs = {d: c.trigger(d, f"bench-{d}") for d in sides}

        def all_waiting() -> bool:
            got = {d: c.states(d, r, TASK).get(WAITING[d], 0) for d, r in runs.items()}
            print(f"  waiting: {got}", flush=True)
            return all(n == args.items for n in got.values())

        c.wait(all_waiting, args.open_timeout, "every gate to wait", step=5.0)
        figures["open_seconds"] = time.perf_counter() - start
        print("counting slots...", flush=True)
        figures["slots"] = count_slots(c, runs, args.samples)
        print("probe DAG...", flush=True)
        figures["probe"] = run_probe(c, args.parallelism)
        after = {d: c.states(d, r, TASK).get(WAITING[d], 0) for d, r in runs.items()}
        figures["waiting_after_probe"] = after

        gate, pending = None, {}
        if OURS in sides:
            from guardflow.gates.service import Gate

            gate = Gate({"poll_interval_s": args.poll_interval}, store_url=store_url)
            pending = {
                r.map_index: r.id
                for r in gate.store.list(status=None, pipeline=OURS, limit=10 * args.items)
                if r.is_open
            }
        times: dict[str, list[dict[str, float]]] = {d: [] for d in sides}
        for i in range(args.decisions):
            order = sides if i % 2 == 0 else sides[::-1]
            for dag_id in order:
                if dag_id == OURS:
                    decide = partial(decide_ours, gate, pending[i])
                else:
                    decide = partial(decide_native, c, runs[NATIVE], i)
                seconds = time_decision(c, dag_id, runs[dag_id], i, decide)
                times[dag_id].append(seconds)
            done = ", ".join(f"{d} {times[d][-1]['success']:.2f} s" for d in sides)
            print(f"  decision {i + 1}: {done}", flush=True)
        figures["times"] = times
        if gate is not None:
            gate.store.dispose()
    return figures


def report(f: dict[str, Any], args: argparse.Namespace, where: str) -> str:
    """The Markdown section: counts, probe, latency table, method."""
    slots = f["slots"]
    labels = {OURS: "guardflow ApprovalGateOperator", NATIVE: "Airflow ApprovalOperator"}
    lines = []
    for dag_id, label in labels.items():
        if dag_id not in slots["states"]:
            continue
        states = slots["states"][dag_id]
        waiting = states.get(WAITING[dag_id], 0)
        lines.append(
            f"- {label}: {waiting} waiting ({WAITING[dag_id]}), "
            f"{slots['held'][dag_id]} slots held (states {states})"
        )
    times = {d: [t["success"] for t in v] for d, v in f["times"].items()}
    med = {d: statistics.median(v) for d, v in times.items()}
    side = {OURS: "guardflow (store decide)", NATIVE: "native (REST PATCH)"}
    rows = [
        [
            side[d],
            str(len(times[d])),
            f"{statistics.median(t['scheduled'] for t in f['times'][d]):.2f}",
            f"{statistics.median(t['queued'] for t in f['times'][d]):.2f}",
            f"{med[d]:.2f}",
            f"{p95(times[d]):.2f}",
            f"{min(times[d]):.2f}",
            f"{max(times[d]):.2f}",
        ]
        for d in times
    ]
    ratio = (
        f"Ratio of medians ours / native: {med[OURS] / med[NATIVE]:.2f}x (ours adds the wait for "
        "the trigger's next read of the store, half a poll interval on average, and the "
        "triggerer's hand-off)."
        if len(med) == 2
        else f"Only {', '.join(times)} ran: no ratio."
    )
    probe = f["probe"]
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in slots["cpu_pct"].items())
    return "\n".join(
        [
            f"Machine: {where}.",
            f"Airflow 3.3.2 in subprocesses: api-server, scheduler (LocalExecutor, parallelism "
            f"{args.parallelism}), triggerer, dag-processor; metadata DB {f['airflow_db']}, gate "
            f"store {f['store']}. Both DAGs: one task mapped over {args.items} items, run at the "
            f"same time. Our trigger polls the store every {args.poll_interval:g} s; the native "
            "3.3 operator parks in `awaiting_input` and the REST response resumes it directly "
            "(no polling; on 3.1/3.2 its HITLTrigger polls every 5 s).",
            "",
            f"Counted while all {len(times) * args.items} gates waited ({args.samples} samples, "
            f"the most seen; all gates open after {f['open_seconds']:.0f} s):",
            "",
            *lines,
            f"- worker processes running a task: {slots['busy_workers']} of {args.parallelism}; "
            f"default pool occupied slots: {slots['pool']} ({slots['pool_detail']})",
            f"- CPU of each component over the {slots['window_s']:.0f} s count window, % of one "
            f"core: {cpu}; the triggerer runs only guardflow's triggers (the native 3.3 "
            "operator uses none)",
            f"- probe DAG of {args.parallelism} 5-second tasks while the gates waited: "
            f"{probe['peak_running']} running at once, done in {probe['seconds']:.1f} s; gates "
            f"still waiting after it: {f['waiting_after_probe']}",
            "",
            f"Decision to task success, {args.decisions} decisions per side, one at a time, "
            "sides alternating when both ran (seconds):",
            "",
            table(
                [
                    "side",
                    "n",
                    "median to scheduled",
                    "median to queued",
                    "median to success",
                    "p95 to success",
                    "min",
                    "max",
                ],
                rows,
            ),
            "",
            ratio,
            "",
            "Method: times run from just before the decision call (ours: `Gate.decide` on the "
            "store, channel `cli`; native: `PATCH .../hitlDetails` with `Approve`) to the task "
            "instance's `scheduled_when`, `queued_when` and `end_date` read back from the REST "
            "API, one decision at a time, each side waiting for success before the next. "
            "'Slots held' is the number of the DAG's task instances running or queued; 'worker "
            "processes running a task' counts LocalExecutor workers with a live child process. "
            "CPU is user + system time of each component and its children over the count "
            "window (psutil).",
        ]
    )


def main() -> None:
    """Parse arguments, run the deployment, print and optionally record the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200, help="mapped gates per DAG")
    parser.add_argument("--decisions", type=int, default=20, help="timed decisions per side")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="GateTrigger poll, s")
    parser.add_argument("--parallelism", type=int, default=4, help="LocalExecutor slots")
    parser.add_argument("--samples", type=int, default=10, help="slot count samples")
    parser.add_argument("--open-timeout", type=float, default=1800, help="s for all to wait")
    parser.add_argument(
        "--sides", default="ours,native", help="which DAGs to run: ours, native or both"
    )
    parser.add_argument("--keep", action="store_true", help="keep AIRFLOW_HOME (logs)")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.decisions > args.items:
        parser.error("--decisions must not exceed --items")
    where = machine()
    figures = measure(args)
    text = report(figures, args, where)
    print(text)
    if args.record:
        append_results(
            "Gates: waiting approvals hold no worker slot; decision to resume vs "
            "ApprovalOperator (benchmarks/gates.py)",
            text,
        )
        print("\nappended to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
