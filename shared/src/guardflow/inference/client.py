"""Inference clients: one batch of rows in, one prediction per row out, on pooled httpx.

:class:`InferenceClient` (sync) and :class:`AsyncInferenceClient` (async) share everything but the
I/O: the protocol adapter builds requests and parses answers, :class:`RetryState` decides retries,
and the same helpers turn failures into :mod:`guardflow.errors`. Messages name the URL, status and
attempts, never request or response bodies (they hold data) nor the token.

Examples:
    >>> from guardflow.inference import EndpointConfig, InferenceClient
    >>> endpoint = EndpointConfig(url="http://127.0.0.1:5001", protocol="mlflow")
    >>> with InferenceClient(endpoint) as client:  # doctest: +SKIP
    ...     client.check_ready()
    ...     client.predict_batch([{"x": 1.0}, {"x": 2.0}]).predictions
    [3.1, 4.2]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from guardflow.inference._ratelimit import RateLimiter
from guardflow.inference._shared import Shared, safe_url
from guardflow.inference.config import EndpointConfig, RetryPolicy
from guardflow.inference.protocols import WireRequest
from guardflow.inference.retry import RetryClock, RetryState

__all__ = ["AsyncInferenceClient", "BatchPrediction", "InferenceClient"]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class BatchPrediction:
    """The answer to one batch.

    Args:
        predictions: One prediction per input row, in row order.
        model_name: Model name the server reported (or the configured one).
        model_version: Model version the server reported (or the configured one).
        latency_ms: Wall time of the batch, retries and back-off included.
        attempts: HTTP attempts made for the batch (more than the requests when retried).
    """

    predictions: list[Any]
    model_name: str | None
    model_version: str | None
    latency_ms: float
    attempts: int


_DEFAULT_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16)


class InferenceClient:
    """Synchronous client for one model endpoint, on a pooled :class:`httpx.Client`.

    Args:
        endpoint: The endpoint (URL, protocol, model, token, timeouts).
        retry: Retry policy (default :class:`RetryPolicy`).
        transport: An httpx transport, e.g. :class:`httpx.MockTransport` in tests.
        limits: Connection pool limits.
        clock: Time sources of the retry loop (tests inject fakes).
        requests_per_second: Optional cap on the request rate, retries included.

    Examples:
        >>> client = InferenceClient(EndpointConfig(url="http://127.0.0.1:5001"))
        >>> client.close()
    """

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        limits: httpx.Limits | None = None,
        clock: RetryClock | None = None,
        requests_per_second: float | None = None,
    ) -> None:
        self._shared = Shared(endpoint, retry, clock)
        self._limiter = RateLimiter(requests_per_second) if requests_per_second else None
        self._http = httpx.Client(
            headers=self._shared.headers,
            timeout=self._shared.timeout,
            verify=self._shared.verify,
            limits=limits or _DEFAULT_LIMITS,
            transport=transport,
        )

    @property
    def endpoint(self) -> EndpointConfig:
        """The endpoint this client calls."""
        return self._shared.endpoint

    def check_ready(self) -> None:
        """Probe the server's readiness path (see :mod:`guardflow.inference.protocols`).

        Raises:
            EndpointNotReadyError: The server is down, or the model is not loaded.
        """
        url = self._shared.url(self._shared.adapter.ready_path)
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            raise self._shared.probe_unreachable(url, exc) from None
        self._shared.probe_answer(url, response)

    def predict_batch(
        self, rows: Sequence[Row], *, idempotency_key: str | None = None
    ) -> BatchPrediction:
        """Send one batch and return one prediction per row.

        Args:
            rows: The rows (dicts of column to value) to score.
            idempotency_key: Sent as ``Idempotency-Key`` on every attempt of this batch.

        Returns:
            The batch's predictions, model name/version, latency and attempts.

        Raises:
            InferenceRequestError: The request failed for good (after retries, when retryable).
            MalformedResponseError: The answer did not hold exactly one prediction per row.
        """
        start = time.perf_counter()
        payloads, attempts = [], 0
        sent = self._shared.requests(rows, idempotency_key)
        for wire, key in sent:
            payload, tries = self._send(wire, key)
            payloads.append(payload)
            attempts += tries
        url = safe_url(self._shared.url(sent[0][0].path))
        parsed = self._shared.adapter.parse(payloads, len(rows), url=url)
        latency = (time.perf_counter() - start) * 1000
        return BatchPrediction(
            parsed.predictions, parsed.model_name, parsed.model_version, latency, attempts
        )

    def _send(self, wire: WireRequest, key: str | None) -> tuple[Any, int]:
        shared = self._shared
        url, content = shared.url(wire.path), shared.encode(wire.body)
        headers = shared.request_headers(key)
        state = RetryState(shared.policy, clock=shared.clock)
        while True:
            state.start_attempt()
            if self._limiter is not None:
                self._limiter.wait()
            try:
                response = self._http.post(url, content=content, headers=headers)
            except httpx.HTTPError as exc:
                error, delay = shared.after_exception(exc, url, state)
            else:
                if response.is_success:
                    return shared.decode(response, url), state.attempts
                error, delay = shared.after_status(response, url, state)
            if delay is None:
                raise error
            shared.log_retry(url, error, state, delay)
            shared.clock.sleep(delay)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _gather_or_cancel(
    coros: list[Coroutine[Any, Any, tuple[Any, int]]],
) -> list[tuple[Any, int]]:
    """Like :func:`asyncio.gather`, but the first failure cancels the requests still running."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class AsyncInferenceClient:
    """Asynchronous client for one model endpoint, on a pooled :class:`httpx.AsyncClient`.

    Same arguments as :class:`InferenceClient`, plus ``max_in_flight``: a bound on the requests
    this client has open at once (it matters for protocols that send one request per row).

    Examples:
        >>> async def main() -> None:  # doctest: +SKIP
        ...     async with AsyncInferenceClient(EndpointConfig(url="http://127.0.0.1:5001")) as c:
        ...         await c.check_ready()
    """

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
        clock: RetryClock | None = None,
        requests_per_second: float | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        self._shared = Shared(endpoint, retry, clock)
        self._limiter = RateLimiter(requests_per_second) if requests_per_second else None
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self._http = httpx.AsyncClient(
            headers=self._shared.headers,
            timeout=self._shared.timeout,
            verify=self._shared.verify,
            limits=limits or _DEFAULT_LIMITS,
            transport=transport,
        )

    @property
    def endpoint(self) -> EndpointConfig:
        """The endpoint this client calls."""
        return self._shared.endpoint

    async def check_ready(self) -> None:
        """Probe the server's readiness path.

        Raises:
            EndpointNotReadyError: The server is down, or the model is not loaded.
        """
        url = self._shared.url(self._shared.adapter.ready_path)
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise self._shared.probe_unreachable(url, exc) from None
        self._shared.probe_answer(url, response)

    async def predict_batch(
        self, rows: Sequence[Row], *, idempotency_key: str | None = None
    ) -> BatchPrediction:
        """Send one batch; return one prediction per row (as :meth:`InferenceClient.predict_batch`).

        Raises:
            InferenceRequestError: The request failed for good.
            MalformedResponseError: The answer did not hold exactly one prediction per row.
        """
        start = time.perf_counter()
        sent = self._shared.requests(rows, idempotency_key)
        if len(sent) == 1:
            results = [await self._send(*sent[0])]
        else:
            results = await _gather_or_cancel([self._send(wire, key) for wire, key in sent])
        url = safe_url(self._shared.url(sent[0][0].path))
        parsed = self._shared.adapter.parse([r[0] for r in results], len(rows), url=url)
        latency = (time.perf_counter() - start) * 1000
        attempts = sum(r[1] for r in results)
        return BatchPrediction(
            parsed.predictions, parsed.model_name, parsed.model_version, latency, attempts
        )

    async def _send(self, wire: WireRequest, key: str | None) -> tuple[Any, int]:
        if self._slots is None:
            return await self._send_now(wire, key)
        async with self._slots:
            return await self._send_now(wire, key)

    async def _send_now(self, wire: WireRequest, key: str | None) -> tuple[Any, int]:
        shared = self._shared
        url, content = shared.url(wire.path), shared.encode(wire.body)
        headers = shared.request_headers(key)
        state = RetryState(shared.policy, clock=shared.clock)
        while True:
            state.start_attempt()
            if self._limiter is not None:
                await self._limiter.await_slot()
            try:
                response = await self._http.post(url, content=content, headers=headers)
            except httpx.HTTPError as exc:
                error, delay = shared.after_exception(exc, url, state)
            else:
                if response.is_success:
                    return shared.decode(response, url), state.attempts
                error, delay = shared.after_status(response, url, state)
            if delay is None:
                raise error
            shared.log_retry(url, error, state, delay)
            await shared.clock.async_sleep(delay)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncInferenceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
