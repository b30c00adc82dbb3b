"""Writing a step's outputs: predictions for the rows that succeeded, the rest to a dead letter.

The output holds the input columns plus the prediction column, in input order. The dead-letter
output holds each failed row with its position, its batch, and its batch's error type and message
(messages never hold row values). Both are written atomically (see :mod:`guardflow.tables`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from guardflow._optional import require
from guardflow.inference._checkpoint import BatchCheckpoint, sibling_uri
from guardflow.inference._scoring import BatchFailure, Plan, Scored
from guardflow.tables import json_default, local_path, write_table

__all__ = [
    "BATCH_INDEX_COLUMN",
    "ERROR_MESSAGE_COLUMN",
    "ERROR_TYPE_COLUMN",
    "ROW_INDEX_COLUMN",
    "default_dead_letter_uri",
    "write_outputs",
]

logger = logging.getLogger("guardflow.inference")

ERROR_TYPE_COLUMN = "_error_type"
ERROR_MESSAGE_COLUMN = "_error_message"
ROW_INDEX_COLUMN = "_row_index"
BATCH_INDEX_COLUMN = "_batch_index"


def default_dead_letter_uri(output: str) -> str:
    """``<output stem>.dead_letter.jsonl`` beside ``output``."""
    name = (local_path(output) or output.split("?", 1)[0]).rstrip("/").rpartition("/")[2]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return sibling_uri(output, f"{stem}.dead_letter.jsonl")


def _prediction_array(pa: Any, values: list[Any]) -> Any:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        logger.warning("inference: predictions mix value types; they are written as JSON text")
        return pa.array(
            [None if v is None else json.dumps(v, default=json_default) for v in values]
        )


def write_outputs(
    plan: Plan, scored: Scored, prediction_column: str, output: str, dead: str
) -> bool:
    """Write the output and (when rows failed) the dead-letter output; return whether any failed."""
    pa = require("pyarrow", "data")
    good = [o for o in scored.outcomes if isinstance(o, BatchCheckpoint)]
    bad = [o for o in scored.outcomes if isinstance(o, BatchFailure)]
    predictions = [p for o in good for p in o.predictions]
    table = plan.table
    if bad:
        table = table.take(
            pa.array([r for o in good for r in range(o.start, o.start + o.rows)], pa.int64())
        )
    write_table(table.append_column(prediction_column, _prediction_array(pa, predictions)), output)
    if bad:
        rows = [r for o in bad for r in range(o.start, o.start + o.rows)]
        failed = plan.table.take(pa.array(rows, pa.int64()))
        extra = {
            ROW_INDEX_COLUMN: pa.array(rows, pa.int64()),
            BATCH_INDEX_COLUMN: pa.array([o.index for o in bad for _ in range(o.rows)], pa.int64()),
            ERROR_TYPE_COLUMN: pa.array([o.error_type for o in bad for _ in range(o.rows)]),
            ERROR_MESSAGE_COLUMN: pa.array([o.message for o in bad for _ in range(o.rows)]),
        }
        for name, column in extra.items():
            failed = failed.append_column(name, column)
        write_table(failed, dead)
    else:
        _remove_stale(dead)
    return bool(bad)


def _remove_stale(uri: str) -> None:
    """Remove a dead-letter output left by an earlier attempt: beside a full output it misleads."""
    path = local_path(uri)
    if path is not None:
        Path(path).unlink(missing_ok=True)
        return
    fs, remote = require("fsspec", "data").core.url_to_fs(uri)
    if fs.exists(remote):
        fs.rm(remote)
