"""Which failed requests are retried, and how long to wait before the next attempt.

Retried: connect errors and other transport failures, timeouts, and HTTP 408, 429, 502, 503 and
504, with exponential backoff and *full* jitter (``uniform(0, min(max_delay, base * 2**n))``, as
in the AWS architecture blog's "Exponential Backoff And Jitter"). A ``Retry-After`` header, in
seconds or as an HTTP date, replaces the computed backoff, capped at ``retry_after_cap``. HTTP 500
is retried at most ``max_500_retries`` times (a model server answers 500 to a malformed batch, and
repeating it rarely helps). Any other 4xx is never retried. Both the number of attempts and the
total time spent on one request are bounded.

Why our own small loop rather than a library: stamina can honour Retry-After through its backoff
hook but has no notion of a per-status budget (500 at most once while 503 keeps going), and
httpx-retries neither retries POST by default nor lets a Retry-After date be capped per policy.
What we need is small: full jitter, per-status caps, Retry-After, and an injectable clock so tests
can assert the delays without sleeping. :class:`RetryState` is that, and nothing more.

Examples:
    >>> from guardflow.inference.config import RetryPolicy
    >>> state = RetryState(RetryPolicy(), clock=RetryClock(random=lambda: 1.0))
    >>> state.start_attempt()
    >>> state.delay_after_status(503, retry_after="2")
    2.0
    >>> state.start_attempt()
    >>> state.delay_after_status(400)
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from guardflow.inference.config import RetryPolicy

__all__ = [
    "RETRYABLE_STATUSES",
    "RetryClock",
    "RetryState",
    "backoff_delay",
    "parse_retry_after",
]

RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 502, 503, 504})
"""Statuses that mean "try again later"; 500 has its own budget."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RetryClock:
    """The time sources of the retry loop. Tests inject fakes to assert delays without waiting.

    Args:
        sleep: Blocking sleep, used by :class:`~guardflow.inference.InferenceClient`.
        async_sleep: Awaitable sleep, used by :class:`~guardflow.inference.AsyncInferenceClient`.
        monotonic: Seconds from a monotonic clock; bounds the total time spent on a request.
        utcnow: The current UTC time; turns a Retry-After HTTP date into seconds.
        random: A number in ``[0, 1)``; the jitter.
    """

    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic
    utcnow: Callable[[], datetime] = _utcnow
    random: Callable[[], float] = field(default=_random.random)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the delay a ``Retry-After`` header asks for, in seconds.

    Args:
        value: The header value: a number of seconds or an HTTP date.
        now: The current UTC time (default: now); used for HTTP dates.

    Returns:
        Seconds to wait (never negative), or ``None`` when the header is absent or unreadable.

    Examples:
        >>> parse_retry_after("3")
        3.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT",
        ...                   now=datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc))
        10.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or _utcnow()
    return max((when - current).total_seconds(), 0.0)


def backoff_delay(retry_number: int, policy: RetryPolicy, *, random: Callable[[], float]) -> float:
    """Return a full-jitter exponential backoff delay.

    Args:
        retry_number: 1 for the first retry, 2 for the second...
        policy: Supplies ``initial_delay`` (the base) and ``max_delay`` (the cap).
        random: A number in ``[0, 1)``.

    Returns:
        ``random() * min(max_delay, initial_delay * 2 ** (retry_number - 1))``.
    """
    ceiling = min(policy.max_delay, policy.initial_delay * 2.0 ** max(retry_number - 1, 0))
    return random() * ceiling


class RetryState:
    """Decides, for one request, whether another attempt is allowed and how long to wait first.

    Call :meth:`start_attempt` before each attempt, then :meth:`delay_after_status` or
    :meth:`delay_after_transport_error` when it fails. A ``None`` answer means "give up".

    Args:
        policy: The retry policy.
        clock: Time sources (real ones by default).
    """

    def __init__(self, policy: RetryPolicy, *, clock: RetryClock | None = None) -> None:
        self.policy = policy
        self.clock = clock or RetryClock()
        self.attempts = 0
        self._retries_500 = 0
        self._started = self.clock.monotonic()

    def start_attempt(self) -> None:
        """Count an attempt about to be made."""
        self.attempts += 1

    def delay_after_status(self, status: int, *, retry_after: str | None = None) -> float | None:
        """Return the wait before retrying after HTTP ``status``, or ``None`` to give up.

        Args:
            status: The error status the server answered.
            retry_after: The ``Retry-After`` header, if any.
        """
        if status == 500:
            if self._retries_500 >= self.policy.max_500_retries:
                return None
            self._retries_500 += 1
        elif status not in RETRYABLE_STATUSES:
            return None
        requested = parse_retry_after(retry_after, now=self.clock.utcnow())
        if requested is not None:
            return self._within_budget(min(requested, self.policy.retry_after_cap))
        return self._within_budget(None)

    def delay_after_transport_error(self) -> float | None:
        """Return the wait before retrying after a connect/read failure or timeout, or ``None``."""
        return self._within_budget(None)

    def _within_budget(self, delay: float | None) -> float | None:
        if self.attempts >= self.policy.max_attempts:
            return None
        if delay is None:
            delay = backoff_delay(self.attempts, self.policy, random=self.clock.random)
        elapsed = self.clock.monotonic() - self._started
        if elapsed + delay > self.policy.max_total_seconds:
            return None
        return delay
