"""GateTrigger on its own: what it stores in Airflow's database and when it fires.

The trigger runs here as Airflow's triggerer runs it (its ``run()`` generator in an event loop)
against a real SQLite gate store; decisions are recorded through the store, as every channel does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from guardflow.errors import ConfigurationError
from guardflow_airflow.triggers.gates import GateTrigger

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gates.db'}"


def _open(store_url: str, **policy: Any) -> Any:
    from guardflow.gates.service import Gate
    from guardflow.identity import RunIdentity

    gate = Gate({"assignees": ["ana"], **policy}, store_url=store_url, notifiers=[])
    identity = RunIdentity(orchestrator="airflow", pipeline="d", run_id="r", task_id="gate")
    return gate, gate.open(identity=identity, subject="Ship it?")


async def _first_event(trigger: GateTrigger, timeout: float = 30.0) -> Any:
    return await asyncio.wait_for(anext(trigger.run()), timeout)


def test_serialized_arguments_rebuild_the_trigger_and_hold_only_ids_and_times(
    store_url: str,
) -> None:
    trigger = GateTrigger("g1", store_url, poll_interval=0.5, wake_at="2030-01-01T00:00:00+00:00")

    classpath, kwargs = trigger.serialize()
    rebuilt = GateTrigger(**kwargs)

    assert classpath == "guardflow_airflow.triggers.gates.GateTrigger"
    assert sorted(kwargs) == ["gate_id", "poll_interval", "store_url", "wake_at"]
    assert rebuilt.serialize() == (classpath, kwargs)


def test_a_store_url_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigurationError, match="holds a password") as refused:
        GateTrigger("g1", "postgresql+psycopg://gates:pw-planted-91@db.internal/gates")

    assert "pw-planted-91" not in str(refused.value)


async def test_fires_resolved_when_a_reviewer_decides(store_url: str) -> None:
    gate, record = _open(store_url)
    trigger = GateTrigger(record.id, store_url, poll_interval=0.05)

    waiting = asyncio.ensure_future(_first_event(trigger))
    await asyncio.sleep(0.2)
    pending_before = not waiting.done()
    await asyncio.to_thread(
        gate.store.decide, record.id, reviewer="ana", option="approve", channel="cli"
    )
    event = await waiting

    assert pending_before
    assert event.payload == {"gate_id": record.id, "status": "resolved"}


async def test_fires_expired_when_the_gate_expires_with_on_timeout_fail(store_url: str) -> None:
    _, record = _open(store_url, expires_after_s=0.3, on_timeout="fail")
    trigger = GateTrigger(record.id, store_url, poll_interval=0.05)

    event = await _first_event(trigger)

    assert event.payload == {"gate_id": record.id, "status": "expired"}


async def test_fires_wake_when_wake_at_passes_while_pending(store_url: str) -> None:
    gate, record = _open(store_url)
    wake = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    trigger = GateTrigger(record.id, store_url, poll_interval=5.0, wake_at=wake.isoformat())

    event = await _first_event(trigger)

    assert event.payload == {"gate_id": record.id, "status": "wake"}
    assert datetime.now(timezone.utc) >= wake
    assert gate.store.get(record.id).is_open


async def test_an_unknown_gate_fails_the_trigger(store_url: str) -> None:
    from guardflow.errors import GateNotFoundError

    _open(store_url)  # creates the store's tables
    trigger = GateTrigger("no-such-gate", store_url, poll_interval=0.05)

    with pytest.raises(GateNotFoundError):
        await _first_event(trigger)


def test_the_provider_registers_the_gate_operators_and_trigger() -> None:
    from guardflow_airflow.get_provider_info import get_provider_info

    info = get_provider_info()
    operators = [m for entry in info["operators"] for m in entry["python-modules"]]
    triggers = [m for entry in info["triggers"] for m in entry["python-modules"]]

    assert "guardflow_airflow.operators.gates" in operators
    assert triggers == ["guardflow_airflow.triggers.gates"]


def test_parsing_a_gate_dag_loads_no_gate_store_server_or_notifier() -> None:
    import json
    import subprocess
    import sys

    dag_file = Path(__file__).resolve().parent / "dags" / "gate_dags.py"
    code = (
        f"import json, runpy, sys; runpy.run_path({str(dag_file)!r}); "
        "print(json.dumps(list(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "guardflow_airflow.operators.gates" in modules
    loaded = {m for m in modules if m.split(".")[0] in ("starlette", "uvicorn", "aiosmtpd")}
    loaded |= {m for m in modules if m.startswith(("guardflow.gates.", "guardflow_airflow.trig"))}
    assert not loaded - {"guardflow.gates.models"}, sorted(loaded)
