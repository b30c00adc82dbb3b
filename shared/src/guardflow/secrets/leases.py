"""Leases of dynamic secrets and the background thread that renews them (and the client token).

Vault hands dynamic credentials out on a lease: they stop working when it expires unless renewed.
A :class:`VaultClient` registers each lease it reads with a :class:`Renewer`, which renews it once
``renew_fraction`` of its duration has passed, as long as the lease is renewable and the server
grants more time. One daemon thread per client does all renewals; it starts with the first lease
and stops on :meth:`Renewer.close`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Lease", "Renewer", "lease_label"]

_log = logging.getLogger("guardflow.secrets")


@dataclass(eq=False)
class Lease:
    """A lease on a secret (or a KV TTL, with an empty ``lease_id``).

    Renewal updates ``duration`` and ``expires_at`` in place, so whoever holds the secret sees
    the current expiry.

    Args:
        lease_id: Vault's lease id (empty for a KV v1 ``ttl``, which cannot be renewed).
        duration: Seconds the lease was granted for at its last renewal.
        renewable: Whether the server allows renewing it.
        expires_at: ``time.monotonic()`` at which it expires.
    """

    lease_id: str
    duration: float
    renewable: bool
    expires_at: float = field(default=0.0)
    renewals: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not self.expires_at:
            self.expires_at = time.monotonic() + self.duration

    @property
    def remaining(self) -> float:
        """Seconds left before it expires (negative once expired)."""
        return self.expires_at - time.monotonic()

    def extend(self, duration: float) -> None:
        """Record a renewal that granted ``duration`` more seconds from now."""
        self.duration = duration
        self.expires_at = time.monotonic() + duration
        self.renewals += 1

    def __repr__(self) -> str:
        return (
            f"Lease({lease_label(self.lease_id)!r}, duration={self.duration:g}, "
            f"renewable={self.renewable}, remaining={self.remaining:.1f})"
        )


def lease_label(lease_id: str) -> str:
    """The path part of a lease id (``database/creds/app/…``): enough to tell leases apart."""
    if not lease_id:
        return ""
    head, _, tail = lease_id.rpartition("/")
    return f"{head}/{tail[:6]}…" if head else lease_id[:6] + "…"


Job = Callable[[], float | None]
"""A renewal job: does its work and returns the delay until its next run, or ``None`` to stop."""


class Renewer:
    """Runs renewal jobs on one daemon thread, each at its own time.

    Args:
        name: Thread name.
    """

    def __init__(self, name: str = "guardflow-vault-renewer") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._jobs: dict[str, tuple[int, Job]] = {}
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, key: str, delay: float, job: Job) -> None:
        """Run ``job`` in ``delay`` seconds, replacing any job already under ``key``."""
        with self._cond:
            if self._closed:
                return
            seq = next(self._seq)
            self._jobs[key] = (seq, job)
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), seq, key))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def cancel(self, key: str) -> None:
        """Forget the job under ``key`` (a no-op when there is none)."""
        with self._cond:
            self._jobs.pop(key, None)

    def scheduled(self) -> list[str]:
        """Keys of the jobs waiting to run."""
        with self._cond:
            return sorted(self._jobs)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread; jobs not yet run are dropped."""
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _next(self) -> tuple[str, Job] | None:
        with self._cond:
            while not self._closed:
                while (
                    self._heap and self._jobs.get(self._heap[0][2], (None,))[0] != self._heap[0][1]
                ):
                    heapq.heappop(self._heap)  # replaced or cancelled
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, key = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                _, job = self._jobs.pop(key)
                return key, job
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            key, job = item
            try:
                delay = job()
            except Exception as exc:  # a failed renewal must not kill the thread
                _log.warning("Vault renewal job %s failed: %s", key, exc)
                continue
            if delay is not None:
                with self._cond:
                    if key in self._jobs:  # rescheduled meanwhile by someone else
                        continue
                self.schedule(key, delay, job)
