"""A request-rate limiter shared by the sync and async clients (evenly spaced slots)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Hands out evenly spaced request slots: at most ``rate`` requests per second.

    Spacing rather than a token bucket: a burst at start-up is what overloads a model server that
    has just come up, so no burst is allowed. Safe to share between threads and tasks.

    Args:
        rate: Requests per second (> 0).
        monotonic: Clock used to space the slots.
    """

    def __init__(self, rate: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._monotonic = monotonic
        self._next = float("-inf")
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Reserve the next slot and return how long to wait for it, in seconds."""
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
            return slot - now

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Block until the next slot."""
        delay = self.reserve()
        if delay > 0:
            sleep(delay)

    async def await_slot(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Wait (without blocking the event loop) until the next slot."""
        delay = self.reserve()
        if delay > 0:
            await sleep(delay)
