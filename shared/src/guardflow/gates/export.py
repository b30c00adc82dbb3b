"""Export gate decisions and label corrections as a dataset for retraining.

One row per reviewed item (gate ids, prediction, score, corrected label, who corrected it, the
gate's outcome and channel) plus one row per gate without items, as the store's
:meth:`~guardflow.gates.store.GateStore.decisions_dataset` gives them. Item data shown to
reviewers was masked when the gate opened; comments are never exported. The file is written
atomically (a temporary file renamed into place) as Parquet or JSON Lines, and can be logged to
an MLflow run as an artifact under ``guardflow/gates/``.

Examples:
    >>> rows = export_decisions(store, "decisions.parquet")  # doctest: +SKIP
    >>> rows = export_decisions(store, "decisions.jsonl", pipeline="orders",
    ...                         mlflow_run_id=run_id, tracking_uri="sqlite:///mlflow.db")
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from guardflow._optional import require
from guardflow.errors import ConfigurationError
from guardflow.tables import json_default, safe_uri, write_bytes

if TYPE_CHECKING:
    from guardflow.gates.store import GateStore

__all__ = ["COLUMNS", "export_decisions"]

logger = logging.getLogger(__name__)

COLUMNS = (
    "gate_id",
    "pipeline",
    "run_id",
    "task_id",
    "item_id",
    "prediction",
    "score",
    "label",
    "corrected",
    "corrected_by",
    "corrected_at",
    "outcome",
    "decided_by",
    "resolved_at",
    "channel",
)
"""The dataset's columns, in order (a column the store adds is kept after these)."""

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def export_decisions(
    store: GateStore,
    path: str | os.PathLike[str],
    *,
    format: Literal["parquet", "jsonl"] | None = None,
    gate_ids: Sequence[str] | None = None,
    pipeline: str | None = None,
    mlflow_run_id: str | None = None,
    tracking_uri: str | None = None,
) -> int:
    """Write the decisions dataset to ``path`` and return the number of rows written.

    Args:
        store: The gate store.
        path: A local path or a URI (through fsspec); parent folders are created.
        format: ``"parquet"`` or ``"jsonl"``; default from the suffix (``.parquet``, ``.pq``,
            ``.jsonl``, ``.ndjson``).
        gate_ids: Only these gates.
        pipeline: Only gates of this pipeline.
        mlflow_run_id: Also log the file to this MLflow run, under ``guardflow/gates/``.
        tracking_uri: MLflow tracking URI (default: MLflow's own resolution).

    Returns:
        Rows written.

    Raises:
        ConfigurationError: The format is neither given nor recognisable from the suffix.
        OutputWriteError: The file could not be written (nothing partial is left).
        TrackingError: MLflow refused the artifact or could not be reached.
        MissingExtraError: pyarrow (``data`` extra) or mlflow (``mlflow`` extra) is missing.
    """
    fmt = format or _SUFFIXES.get(Path(os.fspath(path).split("?", 1)[0]).suffix.lower())
    if fmt not in ("parquet", "jsonl"):
        raise ConfigurationError(
            f"cannot tell the export format of {safe_uri(path)!r}; "
            "end it in .parquet or .jsonl, or pass format='parquet' or 'jsonl'"
        )
    rows = [_ordered(row) for row in store.decisions_dataset(gate_ids=gate_ids, pipeline=pipeline)]
    data = _parquet_bytes(rows) if fmt == "parquet" else _jsonl_bytes(rows)
    write_bytes(data, path)
    logger.info("exported %d gate decision rows to %s", len(rows), safe_uri(path))
    if mlflow_run_id is not None:
        _log_artifact(data, Path(os.fspath(path)).name, mlflow_run_id, tracking_uri)
    return len(rows)


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    out = {name: row.get(name) for name in COLUMNS}
    out.update({k: v for k, v in row.items() if k not in out})
    return out


def _jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    lines = [
        json.dumps(row, default=json_default, ensure_ascii=False, sort_keys=False) + "\n"
        for row in rows
    ]
    return "".join(lines).encode("utf-8")


def _column(pa: Any, values: list[Any]) -> Any:
    """An Arrow array for one column; mixed or nested values become JSON text."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        array = None
    if array is None or (pa.types.is_null(array.type) and any(v is not None for v in values)):
        array = pa.array(
            [None if v is None else json.dumps(v, default=json_default) for v in values],
            type=pa.string(),
        )
    elif pa.types.is_null(array.type):
        array = pa.array(values, type=pa.string())
    return array


def _parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    pa = require("pyarrow", "data")
    pq = require("pyarrow.parquet", "data")
    names = list(dict.fromkeys(name for row in rows for name in row)) or list(COLUMNS)
    table = pa.table({name: _column(pa, [row.get(name) for row in rows]) for name in names})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _log_artifact(data: bytes, name: str, run_id: str, tracking_uri: str | None) -> None:
    mlflow = require("mlflow", "mlflow")
    from guardflow.tracking import _tracking_error

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    where = safe_uri(tracking_uri or mlflow.get_tracking_uri())
    try:
        client.get_run(run_id)  # fails clearly on an unknown run before anything is uploaded
        with tempfile.TemporaryDirectory(prefix="guardflow-gates-") as tmp:
            local = Path(tmp) / name
            local.write_bytes(data)
            client.log_artifact(run_id, str(local), artifact_path="guardflow/gates")
    except Exception as exc:
        # Not chained: MLflow's own message may quote the raw URI, credentials included.
        raise _tracking_error(exc, what="gate decisions", where=where, raw=tracking_uri) from None
    logger.info("logged gate decisions to MLflow run %s at %s", run_id, where)
