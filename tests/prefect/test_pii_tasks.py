"""The mask_pii / scan_pii tasks (and async twins) in real flows, on a real Prefect server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pandas as pd
import pytest
from prefect import flow
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect.states import State

from guardflow.errors import ConfigurationError, PIIFoundError, PIIPolicyError
from guardflow.pii import PIIReport
from prefect_guardflow import amask_pii, ascan_pii, mask_pii, scan_pii
from prefect_guardflow.vault import VaultCredentials

if TYPE_CHECKING:
    from conftest import PrefectServer

EMAIL = "jane.q.doe@example.org"
OTHER_EMAIL = "bob.k.smith@example.net"
IP = "203.0.113.77"
PLANTED = (EMAIL, OTHER_EMAIL, IP)
MASK_POLICY: dict[str, Any] = {
    "columns": {"email": {"entity": "EMAIL_ADDRESS", "action": "replace"}},
    "free_text_columns": ["notes"],
}
SCAN_POLICY: dict[str, Any] = {
    "free_text_columns": ["email", "notes"],
    "allow": {"email": ["EMAIL_ADDRESS"]},
}


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": [1, 2, 3],
            "email": [EMAIL, OTHER_EMAIL, EMAIL],
            "notes": [f"login from {IP}", "printer jammed", f"reply to {OTHER_EMAIL}"],
        }
    )


@pytest.fixture
def source(frame: pd.DataFrame, tmp_path: Path) -> str:
    path = tmp_path / "tickets.parquet"
    frame.to_parquet(path, index=False)
    return str(path)


# -- reading a flow run back from the Prefect API ----------------------------------------------


def _flow_run_id(state: State[Any]) -> UUID:
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return flow_run_id


def _runs_filter(flow_run_id: UUID) -> FlowRunFilter:
    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))


def _task_runs(flow_run_id: UUID) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=_runs_filter(flow_run_id))
    return {r.name.rsplit("-", 1)[0]: r for r in runs}


def _artifacts(flow_run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return list(client.read_artifacts(flow_run_filter=_runs_filter(flow_run_id)))


def _logs(flow_run_id: UUID) -> str:
    APILogHandler().flush()  # logs travel to the API in the background: send what is queued
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return "\n".join(log.message for log in logs)


def _no_pii(*texts: str) -> None:
    for value in PLANTED:
        for text in texts:
            assert value not in text


# -- mask_pii ------------------------------------------------------------------------------------


def test_mask_writes_the_masked_file_and_returns_the_report(source: str, tmp_path: Path) -> None:
    output = tmp_path / "clean.parquet"

    @flow(persist_result=False)
    def ingest() -> PIIReport:
        return mask_pii(source, str(output), MASK_POLICY)

    report = ingest()

    assert isinstance(report, PIIReport)
    assert report.counts["email"] == {"EMAIL_ADDRESS": 3}
    assert report.counts["notes"] == {"IP_ADDRESS": 1, "EMAIL_ADDRESS": 1}
    masked = pd.read_parquet(output)
    assert list(masked["row_id"]) == [1, 2, 3]
    _no_pii(masked.to_csv())


def test_table_artifact_counts_per_column_and_type_and_nothing_leaks(
    source: str, tmp_path: Path
) -> None:
    @flow(persist_result=False)
    def ingest() -> PIIReport:
        return mask_pii(source, str(tmp_path / "clean.csv"), MASK_POLICY)

    state = ingest(return_state=True)

    flow_run_id = _flow_run_id(state)
    (table,) = [a for a in _artifacts(flow_run_id) if a.type == "table"]
    assert table.key == "guardflow-pii-columns"
    assert json.loads(table.data) == [
        {"column": "email", "entity_type": "EMAIL_ADDRESS", "count": 3},
        {"column": "notes", "entity_type": "EMAIL_ADDRESS", "count": 1},
        {"column": "notes", "entity_type": "IP_ADDRESS", "count": 1},
    ]
    _no_pii(_logs(flow_run_id), repr([a.data for a in _artifacts(flow_run_id)]))


def test_tasks_never_persist_results_or_cache_inputs(
    prefect_server: PrefectServer, source: str, tmp_path: Path
) -> None:
    @flow
    def ingest() -> None:
        mask_pii(source, str(tmp_path / "clean.parquet"), MASK_POLICY)
        scan_pii(source, SCAN_POLICY, on_found="warn")

    # other tests' flows may leave their own results in the shared storage: compare before/after
    before = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}
    state = ingest(return_state=True)

    assert state.is_completed()
    runs = _task_runs(_flow_run_id(state))
    assert runs["mask_pii"].state.data is None and runs["scan_pii"].state.data is None
    after = {p for p in prefect_server.result_storage.rglob("*") if p.is_file()}
    assert after - before == set()
    for task in (mask_pii, amask_pii, scan_pii, ascan_pii):
        assert (task.persist_result, task.cache_policy) == (False, NONE)


def test_async_mask_gives_the_same_report(source: str, tmp_path: Path) -> None:
    @flow(persist_result=False)
    async def ingest() -> PIIReport:
        return await amask_pii(source, str(tmp_path / "a.jsonl"), MASK_POLICY)

    report = asyncio.run(ingest())

    assert report.counts == {
        "email": {"EMAIL_ADDRESS": 3},
        "notes": {"IP_ADDRESS": 1, "EMAIL_ADDRESS": 1},
    }
    _no_pii((tmp_path / "a.jsonl").read_text("utf-8"))


def test_tokenize_uses_the_vault_credentials_block(
    source: str, tmp_path: Path, vault_server: Any
) -> None:
    vault_server.ensure_ready()
    credentials = VaultCredentials.from_config(vault_server.config())
    policy = {
        "columns": {"email": {"entity": "EMAIL_ADDRESS", "action": "tokenize"}},
        "free_text_columns": ["notes"],
        "transit_key": "guardflow-prefect-tests",
    }
    output = tmp_path / "tokens.parquet"

    @flow(persist_result=False)
    def ingest() -> PIIReport:
        return mask_pii(source, str(output), policy, vault_credentials=credentials)

    state = ingest(return_state=True)

    assert state.is_completed(), state.message
    tokens = list(pd.read_parquet(output)["email"])
    assert tokens[0] == tokens[2] != tokens[1]
    _no_pii(" ".join(tokens), _logs(_flow_run_id(state)))


def test_an_invalid_policy_fails_without_retry(source: str, tmp_path: Path) -> None:
    @flow(persist_result=False)
    def ingest() -> PIIReport:
        return mask_pii(source, str(tmp_path / "o.csv"), {"default_action": "shred"})

    state = ingest(return_state=True)

    with pytest.raises(PIIPolicyError, match="default_action"):
        state.result()
    assert _task_runs(_flow_run_id(state))["mask_pii"].run_count == 1


# -- scan_pii ------------------------------------------------------------------------------------


def test_scan_fail_raises_naming_the_column_without_retry(source: str) -> None:
    @flow(persist_result=False)
    def check() -> PIIReport:
        return scan_pii(source, SCAN_POLICY)

    state = check(return_state=True)

    assert state.is_failed()
    with pytest.raises(PIIFoundError, match="notes: EMAIL_ADDRESS=1, IP_ADDRESS=1") as caught:
        state.result()
    assert caught.value.report.violations["notes"] == {"EMAIL_ADDRESS": 1, "IP_ADDRESS": 1}
    task_run = _task_runs(_flow_run_id(state))["scan_pii"]
    assert (task_run.state.is_failed(), task_run.run_count) == (True, 1)
    _no_pii(_logs(_flow_run_id(state)), str(caught.value))


def test_scan_warn_logs_and_returns_the_report(source: str) -> None:
    @flow(persist_result=False)
    def check() -> PIIReport:
        return scan_pii(source, SCAN_POLICY, on_found="warn")

    state = check(return_state=True)

    report = state.result()
    assert report.violations["notes"] == {"EMAIL_ADDRESS": 1, "IP_ADDRESS": 1}
    logs = _logs(_flow_run_id(state))
    assert "on_found='warn'" in logs and "notes: EMAIL_ADDRESS=1" in logs
    _no_pii(logs)


def test_scan_accepts_data_in_memory_and_passes_what_is_allowed(frame: pd.DataFrame) -> None:
    allow = {"email": ["EMAIL_ADDRESS"], "notes": ["EMAIL_ADDRESS", "IP_ADDRESS"]}
    policy = {**SCAN_POLICY, "allow": allow}

    @flow(persist_result=False)
    def check() -> PIIReport:
        return scan_pii(frame, policy)

    report = check()

    assert report.counts["notes"] == {"IP_ADDRESS": 1, "EMAIL_ADDRESS": 1}
    assert not any(n for types in report.violations.values() for n in types.values())


def test_async_scan_fails_like_the_sync_one(source: str) -> None:
    @flow(persist_result=False)
    async def check() -> PIIReport:
        return await ascan_pii(source, SCAN_POLICY)

    state = asyncio.run(check(return_state=True))  # type: ignore[arg-type]

    with pytest.raises(PIIFoundError, match="notes"):
        state.result()


def test_an_unknown_on_found_is_refused(source: str) -> None:
    @flow(persist_result=False)
    def check() -> PIIReport:
        return scan_pii(source, SCAN_POLICY, on_found="skip")  # type: ignore[arg-type]

    with pytest.raises(ConfigurationError, match="on_found must be"):
        check()


# -- workers -------------------------------------------------------------------------------------


def test_workers_mask_and_scan_as_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guardflow.pii import mask_file
    from guardflow.pii._parallel import MIN_SLICE_ROWS, _Worker

    rows = 2 * MIN_SLICE_ROWS + 100  # one batch, two slices
    notes = [
        f"login from {IP}" if i % 3 else f"reply to {OTHER_EMAIL} re #{i}" for i in range(rows)
    ]
    big = tmp_path / "big.parquet"
    pd.DataFrame({"row_id": range(rows), "email": [EMAIL] * rows, "notes": notes}).to_parquet(big)
    sent: list[str] = []
    real_send = _Worker.send
    monkeypatch.setattr(_Worker, "send", lambda w, r: (sent.append(r[0]), real_send(w, r))[1])

    @flow(persist_result=False)
    async def ingest() -> tuple[PIIReport, PIIReport]:
        masked = mask_pii(str(big), str(tmp_path / "clean.parquet"), MASK_POLICY, workers=2)
        scanned = await ascan_pii(str(tmp_path / "clean.parquet"), SCAN_POLICY, workers=2)
        return masked, scanned

    state = asyncio.run(ingest(return_state=True))

    masked, scanned = state.result()
    assert sent == ["arrow"] * 3  # mask: notes; scan: email, then notes
    assert masked.counts["notes"] == {"IP_ADDRESS": 2 * rows // 3, "EMAIL_ADDRESS": (rows + 2) // 3}
    assert scanned.total == 0
    mask_file(big, tmp_path / "serial.parquet", MASK_POLICY)
    assert pd.read_parquet(tmp_path / "clean.parquet").equals(
        pd.read_parquet(tmp_path / "serial.parquet")
    )
    _no_pii(_logs(_flow_run_id(state)), pd.read_parquet(tmp_path / "clean.parquet").to_csv())
