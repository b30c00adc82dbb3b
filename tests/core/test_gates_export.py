"""Exporting gate decisions and label corrections as Parquet / JSON Lines, and to MLflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from guardflow.audit import MemoryAuditSink
from guardflow.errors import ConfigurationError, TrackingError
from guardflow.gates.export import export_decisions
from guardflow.gates.models import GatePolicy
from guardflow.gates.service import Gate
from guardflow.gates.store import GateStore
from guardflow.gates.tokens import LinkSigner
from guardflow.identity import RunIdentity

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GateStore]:
    store = GateStore(f"sqlite:///{tmp_path / 'gates.db'}")
    yield store
    store.dispose()


@pytest.fixture
def decided(store: GateStore) -> list[str]:
    """Two gates: one with items (one relabelled) approved by ana, one without items rejected."""
    gate = Gate(
        GatePolicy(),
        store=store,
        notifiers=[],
        signer=LinkSigner("k" * 40),
        audit_sink=MemoryAuditSink(),
    )
    items = [
        {"id": "a", "prediction": "cat", "confidence": 0.3},
        {"id": "b", "prediction": "dog", "confidence": 0.4},
    ]
    first = gate.open(
        identity=RunIdentity(pipeline="pets", run_id="r1"), subject="Labels?", items=items, now=T0
    )
    store.correct_item(first.id, "a", label="lynx", reviewer="ana", channel="page")
    gate.decide(first.id, reviewer="ana", option="approve", channel="page")
    second = gate.open(identity=RunIdentity(pipeline="other"), subject="Ship?", now=T0)
    gate.decide(second.id, reviewer="bo", option="reject", channel="cli")
    return [first.id, second.id]


def _by_item(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {row["item_id"]: row for row in rows}


def test_parquet_export_has_one_row_per_item_with_the_corrected_label(
    store: GateStore, decided: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "out" / "decisions.parquet"

    written = export_decisions(store, target, pipeline="pets")

    rows = pq.read_table(target).to_pylist()
    assert written == len(rows) == 2
    by_item = _by_item(rows)
    assert (by_item["a"]["label"], by_item["a"]["corrected"]) == ("lynx", True)
    assert (by_item["b"]["label"], by_item["b"]["corrected"]) == (None, False)
    assert by_item["a"]["prediction"] == "cat"
    assert by_item["a"]["outcome"] == "approve"
    assert by_item["a"]["decided_by"] == ["ana"]
    assert by_item["a"]["resolved_at"].tzinfo is not None


def test_jsonl_export_includes_gates_without_items(
    store: GateStore, decided: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "decisions.jsonl"

    written = export_decisions(store, target)

    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert written == len(rows) == 3
    no_items = [r for r in rows if r["item_id"] is None]
    assert [(r["gate_id"], r["outcome"], r["channel"]) for r in no_items] == [
        (decided[1], "reject", "cli")
    ]
    assert _by_item(rows)["a"]["label"] == "lynx"


def test_the_format_argument_overrides_the_suffix(
    store: GateStore, decided: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "decisions.data"

    export_decisions(store, target, format="jsonl", gate_ids=[decided[1]])

    assert json.loads(target.read_text())["gate_id"] == decided[1]


def test_an_unknown_suffix_without_a_format_is_refused(store: GateStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\.parquet or \.jsonl"):
        export_decisions(store, tmp_path / "decisions.csv")


def test_an_empty_store_exports_an_empty_parquet_file_with_the_columns(
    store: GateStore, tmp_path: Path
) -> None:
    target = tmp_path / "empty.parquet"

    assert export_decisions(store, target) == 0

    table = pq.read_table(target)
    assert table.num_rows == 0
    assert {"gate_id", "item_id", "label", "corrected"} <= set(table.column_names)


def test_the_export_replaces_the_file_atomically_leaving_no_temp_files(
    store: GateStore, decided: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "decisions.parquet"
    target.write_bytes(b"old")

    export_decisions(store, target)

    assert pq.read_table(target).num_rows == 3
    assert sorted(p.name for p in tmp_path.iterdir() if "decisions" in p.name) == [
        "decisions.parquet"
    ]


def test_the_export_is_logged_to_an_mlflow_run_as_an_artifact(
    store: GateStore,
    decided: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("gates")).info.run_id
    target = tmp_path / "decisions.jsonl"

    export_decisions(store, target, mlflow_run_id=run_id, tracking_uri=uri)

    [artifact] = client.list_artifacts(run_id, "guardflow/gates")
    assert artifact.path == "guardflow/gates/decisions.jsonl"
    local = client.download_artifacts(run_id, artifact.path, str(tmp_path / "dl"))
    assert Path(local).read_bytes() == target.read_bytes()


def test_an_unknown_mlflow_run_raises_a_tracking_error(
    store: GateStore, decided: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    MlflowClient(tracking_uri=uri).search_experiments()

    with pytest.raises(TrackingError):
        export_decisions(store, tmp_path / "d.jsonl", mlflow_run_id="0" * 32, tracking_uri=uri)
