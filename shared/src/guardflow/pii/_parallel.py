"""Detection on several processes: a batch's texts cut into contiguous slices, one per worker.

The per-row checks are Python and hold the GIL, so more threads do not help; more processes
do. :class:`ParallelDetector` sends each worker one slice of a column (an Arrow slice or a list
of strings), each worker runs its own :class:`~guardflow.pii.detector.Detector` with the same
settings, and the entities come back as plain tuples. A row's entities depend on that row alone,
so the result is the one a single process gives, in the same order.

Workers are plain child processes (``python -m guardflow.pii._worker``, not ``fork``: polars'
thread pool does not survive it), started on first use and kept for the caller's batches;
requests and results cross their pipes as length-prefixed pickles.
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Any

from guardflow.errors import ConfigurationError, GuardflowError
from guardflow.pii.detector import Detector
from guardflow.pii.entities import Entity, EntityType

__all__ = [
    "MIN_SLICE_ROWS",
    "ParallelDetector",
    "check_workers",
    "read_frame",
    "serve",
    "write_frame",
]

#: Below this many rows per worker a slice costs more to ship than to scan here.
MIN_SLICE_ROWS = 2048

# (entity type names, context, ner, min_score): what a worker needs to build the detector.
_Settings = tuple[tuple[str, ...], bool, bool, float]
# One row's entities as plain tuples: (type name, start, end, score).
_Found = list[tuple[str, int, int, float]]


def check_workers(workers: int) -> int:
    """Validate a ``workers`` argument: a whole number of processes, at least 1.

    Raises:
        ConfigurationError: ``workers`` is not an integer of at least 1.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigurationError(
            f"workers must be a whole number of processes, at least 1 (got {workers!r})"
        )
    return workers


class ParallelDetector:
    """A :class:`~guardflow.pii.detector.Detector` whose column passes run on worker processes.

    Args:
        detector: The detector; the workers build their own with its settings.
        workers: Processes that detect, this one included (1: this one alone). A batch is
            cut into that many slices when each gets :data:`MIN_SLICE_ROWS` rows or more;
            this process scans the last while ``workers - 1`` child processes scan the rest.

    Examples:
        >>> from guardflow.pii import Detector
        >>> pd = ParallelDetector(Detector(), workers=1)
        >>> [e.type.value for e in pd.detect_many(["ssn 123-45-6780"])[0]]
        ['US_SSN']
        >>> pd.close()
    """

    def __init__(self, detector: Detector, workers: int) -> None:
        self.detector = detector
        self.workers = check_workers(workers)
        self._settings: _Settings = (
            tuple(sorted(t.value for t in detector.entities)),
            detector.context,
            detector.ner,
            detector.min_score,
        )
        self._procs: list[_Worker] = []

    def _slices(self, n: int) -> list[tuple[int, int]]:
        """Contiguous ``(start, stop)`` row ranges, one per worker that gets enough rows."""
        k = min(self.workers, n // MIN_SLICE_ROWS)
        if k < 2:
            return []
        bounds = [n * i // k for i in range(k + 1)]
        return list(itertools.pairwise(bounds))

    def _run(self, kind: str, payloads: list[Any]) -> list[Any]:
        """Each payload's result, in order: the last one here, the others on worker processes.

        The workers' requests go out first, so this process scans its own slice meanwhile.
        """
        ahead = payloads[:-1]
        while len(self._procs) < len(ahead):
            self._procs.append(_Worker())
        try:
            for proc, payload in zip(self._procs, ahead, strict=False):
                proc.send((kind, self._settings, payload))
            mine = serve((kind, self._settings, payloads[-1]), self.detector)
            return [proc.receive() for proc in self._procs[: len(ahead)]] + [mine]
        except BaseException:
            self.close(kill=True)  # a worker mid-request cannot be reused
            raise

    def detect_many(self, texts: Sequence[str | None]) -> list[list[Entity]]:
        """:meth:`Detector.detect_many`, each slice of ``texts`` on a worker.

        Args:
            texts: Texts; ``None`` and empty strings give ``[]``.

        Returns:
            One sorted, non-overlapping entity list per input, in input order.
        """
        slices = self._slices(len(texts))
        if not slices:
            return self.detector.detect_many(texts)
        out: list[list[Entity]] = []
        for result in self._run("texts", [list(texts[lo:hi]) for lo, hi in slices]):
            out.extend(_entities(found) for found in result)
        return out

    def detect_column(self, column: Any) -> tuple[list[int], list[str], list[list[Entity]]]:
        """:meth:`Detector.detect_column`, each slice of ``column`` on a worker.

        Args:
            column: A ``pyarrow`` (chunked) array of strings, or a polars string Series.

        Returns:
            ``(rows, texts, entities)`` for the rows with at least one entity.
        """
        import pyarrow as pa

        slices = self._slices(len(column))
        if not slices or not isinstance(column, (pa.Array, pa.ChunkedArray)):
            return self.detector.detect_column(column)
        combined = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        # Each worker gets its rows only: a slice pickles with its parent's whole buffers, a
        # concatenated copy with its own. The last slice stays here and needs no copy.
        parts = [combined.slice(lo, hi - lo) for lo, hi in slices]
        parts[:-1] = [pa.concat_arrays([part]) for part in parts[:-1]]
        rows: list[int] = []
        found: list[list[Entity]] = []
        for (lo, _), result in zip(slices, self._run("arrow", parts), strict=True):
            for row, hits in result:
                rows.append(lo + row)
                found.append(_entities(hits))
        texts = combined.take(pa.array(rows, pa.int64())).to_pylist() if rows else []
        return rows, texts, found

    def close(self, *, kill: bool = False) -> None:
        """Stop the workers (the next pass starts new ones); ``kill``: at once, mid-request."""
        procs, self._procs = self._procs, []
        for proc in procs:
            proc.stop(kill=kill)


class _Worker:
    """One worker process (``python -m guardflow.pii._worker``), spoken to over its pipes.

    A plain child process, not a ``multiprocessing`` one: it needs no ``__main__`` guard in the
    caller's script and may be started from a daemonic process (a Celery or executor worker).
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guardflow.pii._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def send(self, request: Any) -> None:
        """Write one request frame."""
        assert self.proc.stdin is not None
        try:
            write_frame(self.proc.stdin, request)
        except (BrokenPipeError, OSError) as exc:
            raise _died(self.proc) from exc

    def receive(self) -> Any:
        """Read one reply frame: the result, or the error the worker met."""
        assert self.proc.stdout is not None
        try:
            status, value = read_frame(self.proc.stdout)
        except (EOFError, OSError) as exc:
            raise _died(self.proc) from exc
        if status != "ok":
            raise GuardflowError(f"a PII detection worker failed: {value}")
        return value

    def stop(self, *, kill: bool = False) -> None:
        """Close its input (it exits) and wait; kill it if it does not, or at once (``kill``)."""
        proc = self.proc
        if kill:
            proc.kill()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _died(proc: subprocess.Popen[bytes]) -> GuardflowError:
    code = proc.poll()
    how = f"exit code {code}" if code is not None else "its pipe closed"
    return GuardflowError(
        f"a PII detection worker process stopped ({how}: out of memory, or killed); nothing "
        "was written. Run again with fewer workers or smaller batches",
        retryable=True,
    )


def write_frame(stream: IO[bytes], value: Any) -> None:
    """Write ``value`` pickled, after its length (8 bytes, big-endian)."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big"))
    stream.write(data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """Read one frame written by :func:`write_frame`.

    Raises:
        EOFError: The stream ended before a whole frame.
    """
    head = _read_exactly(stream, 8)
    return pickle.loads(_read_exactly(stream, int.from_bytes(head, "big")))


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("stream ended inside a frame")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _entities(found: _Found) -> list[Entity]:
    return [Entity(EntityType(t), s, e, score) for t, s, e, score in found]


def _plain(entities: list[Entity]) -> _Found:
    return [(e.type.value, e.start, e.end, e.score) for e in entities]


_DETECTORS: dict[_Settings, Detector] = {}


def _worker_detector(settings: _Settings) -> Detector:
    """This worker's detector for ``settings`` (built once per process)."""
    detector = _DETECTORS.get(settings)
    if detector is None:
        names, context, ner, min_score = settings
        detector = _DETECTORS[settings] = Detector(
            [EntityType(n) for n in names], context=context, ner=ner, min_score=min_score
        )
    return detector


def serve(request: tuple[str, _Settings, Any], detector: Detector | None = None) -> Any:
    """One request's result (``"texts"``: a list of strings; ``"arrow"``: an Arrow slice).

    ``detector``: the one to use; by default, this process's detector for the settings.
    """
    kind, settings, payload = request
    if detector is None:
        detector = _worker_detector(settings)
    if kind == "texts":
        return [_plain(found) for found in detector.detect_many(payload)]
    rows, _, found = detector.detect_column(payload)
    return [(row, _plain(hits)) for row, hits in zip(rows, found, strict=True)]
