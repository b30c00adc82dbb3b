"""Per-batch checkpoints: a retried step resumes without sending finished batches again.

Each finished batch is one small JSON file (``batch-00000012.json``) written atomically into a
folder named after the step key, so a checkpoint is either complete or absent. A checkpoint is
used only if it matches the batch it claims to be (index, first row, row count, predictions).
The folder is removed once the step succeeds.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from guardflow._optional import require
from guardflow.tables import json_default, local_path, write_bytes

__all__ = ["BatchCheckpoint", "CheckpointStore", "default_checkpoint_dir", "sibling_uri"]

logger = logging.getLogger("guardflow.inference")

_NAME = re.compile(r"^batch-(\d{8})\.json$")


@dataclass(frozen=True)
class BatchCheckpoint:
    """A finished batch: where it sits in the input, and its predictions."""

    index: int
    start: int
    rows: int
    predictions: list[Any]
    model_name: str | None
    model_version: str | None
    latency_ms: float


def sibling_uri(uri: str, name: str) -> str:
    """Return the URI of ``name`` in the same folder as ``uri`` (local path or URI)."""
    path = local_path(uri)
    if path is not None:
        return str(Path(path).with_name(name))
    head, _, _ = uri.split("?", 1)[0].rpartition("/")
    return f"{head}/{name}"


def default_checkpoint_dir(output: str, step_key: str) -> str:
    """``<output folder>/.<output name>.checkpoints/<step key>``."""
    base = local_path(output) or output.split("?", 1)[0]
    name = base.rstrip("/").rpartition("/")[2]
    return sibling_uri(output, f".{name}.checkpoints") + f"/{step_key}"


class CheckpointStore:
    """Checkpoints of one step, in a local folder or under a URI (through fsspec).

    Args:
        location: The folder; created on first save.
    """

    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/")
        self._local = local_path(self.location)

    @property
    def is_local(self) -> bool:
        """Whether saves are local file writes (cheap enough to do on the event loop)."""
        return self._local is not None

    def _uri(self, index: int) -> str:
        return f"{self.location}/batch-{index:08d}.json"

    def load(self, expected: dict[int, tuple[int, int]]) -> dict[int, BatchCheckpoint]:
        """Return the valid checkpoints among ``expected`` (``index -> (start, rows)``)."""
        found: dict[int, BatchCheckpoint] = {}
        for name, read in self._entries():
            match = _NAME.match(name)
            index = int(match.group(1)) if match else -1
            if index not in expected:
                continue
            try:
                checkpoint = BatchCheckpoint(**json.loads(read()))
            except (OSError, ValueError, TypeError):
                logger.warning("ignoring unreadable checkpoint %s; the batch is sent again", name)
                continue
            start, rows = expected[index]
            valid = (checkpoint.index, checkpoint.start, checkpoint.rows) == (index, start, rows)
            if valid and len(checkpoint.predictions) == rows:
                found[index] = checkpoint
        return found

    def _entries(self) -> list[tuple[str, Any]]:
        if self._local is not None:
            folder = Path(self._local)
            if not folder.is_dir():
                return []
            return [(p.name, p.read_bytes) for p in folder.iterdir()]
        fs, root = require("fsspec", "data").core.url_to_fs(self.location)
        if not fs.isdir(root):
            return []
        paths = fs.ls(root, detail=False)
        return [(str(p).rpartition("/")[2], lambda p=p: fs.cat_file(p)) for p in paths]

    def save(self, checkpoint: BatchCheckpoint) -> None:
        """Write one checkpoint atomically.

        Raises:
            OutputWriteError: The checkpoint could not be written.
        """
        data = json.dumps(asdict(checkpoint), default=json_default, separators=(",", ":"))
        write_bytes(data.encode(), self._uri(checkpoint.index))

    def clear(self) -> None:
        """Remove every checkpoint of the step (and the parent folder, when left empty)."""
        try:
            if self._local is not None:
                folder = Path(self._local)
                shutil.rmtree(folder, ignore_errors=True)
                if folder.parent.is_dir() and not any(folder.parent.iterdir()):
                    folder.parent.rmdir()
                return
            fs, root = require("fsspec", "data").core.url_to_fs(self.location)
            if fs.exists(root):
                fs.rm(root, recursive=True)
            parent = root.rstrip("/").rpartition("/")[0]
            if parent and fs.isdir(parent) and not fs.ls(parent, detail=False):
                fs.rm(parent, recursive=True)
        except OSError:
            logger.warning("could not remove checkpoints at %s; delete them by hand", self.location)
