"""Per-batch checkpoints: a retried step resumes without sending finished batches again.

Checkpoints live in a folder named after the step key. Locally, each finished batch is one line
appended (and flushed) to ``journal.jsonl``: one write per batch keeps the cost off the hot path,
and a line torn by a crash is simply ignored. Under a remote URI, where appends are not
available, each batch is one small JSON file (``batch-00000012.json``) written atomically. Either
way a checkpoint is complete or absent, and it is used only if it matches the batch it claims to
be (index, first row, row count, predictions). The folder is removed once the step succeeds.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from guardflow._optional import require
from guardflow.errors import OutputWriteError
from guardflow.tables import json_default, local_path, safe_uri, write_bytes

__all__ = ["BatchCheckpoint", "CheckpointStore", "default_checkpoint_dir", "sibling_uri"]

logger = logging.getLogger("guardflow.inference")

_NAME = re.compile(r"^batch-(\d{8})\.json$")
_JOURNAL = "journal.jsonl"


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
        self._journal: IO[str] | None = None

    @property
    def is_local(self) -> bool:
        """Whether saves are local appends (cheap enough to do on the event loop)."""
        return self._local is not None

    def _uri(self, index: int) -> str:
        return f"{self.location}/batch-{index:08d}.json"

    def load(self, expected: dict[int, tuple[int, int]]) -> dict[int, BatchCheckpoint]:
        """Return the valid checkpoints among ``expected`` (``index -> (start, rows)``)."""
        found: dict[int, BatchCheckpoint] = {}
        for name, raw in self._records():
            try:
                checkpoint = BatchCheckpoint(**json.loads(raw))
            except (OSError, ValueError, TypeError):
                logger.warning("ignoring unreadable checkpoint %s; the batch is sent again", name)
                continue
            bounds = expected.get(checkpoint.index)
            if bounds is None:
                continue
            start, rows = bounds
            if (checkpoint.start, checkpoint.rows) == (start, rows) and len(
                checkpoint.predictions
            ) == rows:
                found[checkpoint.index] = checkpoint
        return found

    def save(self, checkpoint: BatchCheckpoint) -> None:
        """Record one finished batch (a flushed journal line locally, a file remotely).

        Raises:
            OutputWriteError: The checkpoint could not be written.
        """
        data = json.dumps(asdict(checkpoint), default=json_default, separators=(",", ":"))
        if self._local is None:
            write_bytes(data.encode(), self._uri(checkpoint.index))
            return
        try:
            if self._journal is None:
                self._journal = self._open_journal(Path(self._local))
            self._journal.write(data + "\n")
            self._journal.flush()
        except OSError as exc:
            raise OutputWriteError(
                f"could not write a checkpoint under {safe_uri(self.location)} "
                f"({type(exc).__name__}); check that the folder is writable",
                retryable=True,
            ) from None

    @staticmethod
    def _open_journal(folder: Path) -> IO[str]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / _JOURNAL
        torn = False
        if path.is_file() and path.stat().st_size:
            with path.open("rb") as fh:
                fh.seek(-1, 2)
                torn = fh.read(1) != b"\n"
        journal = path.open("a", encoding="utf-8")
        if torn:
            # A crash cut the last line short: end it, so the next line stands on its own.
            journal.write("\n")
        return journal

    def close(self) -> None:
        """Close the local journal, if open (saving again reopens it)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def clear(self) -> None:
        """Remove every checkpoint of the step (and the parent folder, when left empty)."""
        self.close()
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
            logger.warning(
                "could not remove checkpoints at %s; delete them by hand", safe_uri(self.location)
            )

    def _records(self) -> list[tuple[str, Any]]:
        """``(where, raw JSON)`` for every stored checkpoint."""
        if self._local is not None:
            journal = Path(self._local) / _JOURNAL
            if not journal.is_file():
                return []
            lines = journal.read_text(encoding="utf-8").splitlines()
            return [(f"{_JOURNAL}:{n + 1}", line) for n, line in enumerate(lines) if line]
        out: list[tuple[str, Any]] = []
        for name, read in self._entries():
            if _NAME.match(name):
                try:
                    out.append((name, read()))
                except OSError:
                    logger.warning(
                        "ignoring unreadable checkpoint %s; the batch is sent again", name
                    )
        return out

    def _entries(self) -> list[tuple[str, Any]]:
        fs, root = require("fsspec", "data").core.url_to_fs(self.location)
        if not fs.isdir(root):
            return []
        paths = fs.ls(root, detail=False)
        return [(str(p).rpartition("/")[2], lambda p=p: fs.cat_file(p)) for p in paths]
