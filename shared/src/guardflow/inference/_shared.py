"""What the sync and async clients share: headers, TLS, encoding, and failures mapped onto errors.

Messages name the URL (without user info or query), the status and the attempts; never request or
response bodies, which hold data, nor the token.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from guardflow.errors import (
    ConfigurationError,
    EndpointNotReadyError,
    InferenceConnectError,
    InferenceError,
    InferenceHTTPError,
    InferenceRequestError,
    InferenceTimeoutError,
    MalformedResponseError,
)
from guardflow.inference.config import EndpointConfig, RetryPolicy
from guardflow.inference.protocols import WireRequest, adapter_for
from guardflow.inference.retry import RETRYABLE_STATUSES, RetryClock, RetryState
from guardflow.tables import json_default, safe_uri

__all__ = ["Shared", "safe_url"]

logger = logging.getLogger("guardflow.inference")

Row = Mapping[str, Any]


def safe_url(url: str) -> str:
    """Drop user info and query string: they may carry credentials."""
    return safe_uri(url)


def _tls(verify: bool | str) -> ssl.SSLContext | bool:
    """A CA bundle path becomes an SSL context (httpx deprecates passing the path itself)."""
    if not isinstance(verify, str):
        return verify
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError):
        raise ConfigurationError(
            f"endpoint.verify names a CA bundle that cannot be read: {verify!r}"
        ) from None


class Shared:
    """What both clients share: headers, encoding, and mapping failures onto guardflow errors."""

    def __init__(
        self, endpoint: EndpointConfig, retry: RetryPolicy | None, clock: RetryClock | None
    ) -> None:
        self.endpoint = endpoint
        self.policy = retry or RetryPolicy()
        self.clock = clock or RetryClock()
        self.adapter = adapter_for(endpoint)
        headers = {"Accept": "application/json", "User-Agent": "guardflow", **endpoint.headers}
        if endpoint.token is not None:
            headers["Authorization"] = f"Bearer {endpoint.token.get_secret_value()}"
        self.headers = headers
        t = endpoint.timeouts
        self.timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)
        self.verify = _tls(endpoint.verify)

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on the endpoint."""
        return self.endpoint.url + path

    @staticmethod
    def encode(body: dict[str, Any]) -> bytes:
        """Serialise a request body to compact JSON bytes."""
        return json.dumps(body, default=json_default, separators=(",", ":")).encode()

    @staticmethod
    def request_headers(key: str | None) -> dict[str, str]:
        """Per-request headers: the Idempotency-Key when one is given."""
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def requests(
        self, rows: Sequence[Row], key: str | None
    ) -> list[tuple[WireRequest, str | None]]:
        """The wire requests for one batch (several for one-request-per-row protocols)."""
        if not rows:
            raise ConfigurationError("predict_batch needs at least one row")
        wires = self.adapter.build(rows, request_id=key)
        if len(wires) == 1 or key is None:
            return [(wire, key) for wire in wires]
        return [(wire, f"{key}.{i}") for i, wire in enumerate(wires)]

    def decode(self, response: httpx.Response, url: str) -> Any:
        """Parse a JSON answer, or raise MalformedResponseError naming what was wrong."""
        try:
            return json.loads(response.content)
        except ValueError:
            detail = "the body is not valid JSON"
            raise MalformedResponseError(
                f"{safe_url(url)} answered HTTP {response.status_code} but {detail}; "
                "check that endpoint.protocol matches the server",
                url=safe_url(url),
                detail=detail,
            ) from None

    def after_status(
        self, response: httpx.Response, url: str, state: RetryState
    ) -> tuple[InferenceError, float | None]:
        """Map an error status onto a guardflow error and the retry decision."""
        status = response.status_code
        delay = state.delay_after_status(status, retry_after=response.headers.get("Retry-After"))
        hint = _STATUS_HINTS.get(status) or (
            "the server refused the batch; check the model name, protocol and input columns"
            if status < 500
            else "the server failed; check its log"
        )
        retryable = status in RETRYABLE_STATUSES or status >= 500
        error = InferenceHTTPError(
            f"{safe_url(url)} answered HTTP {status} after {state.attempts} attempt(s); {hint}",
            url=safe_url(url),
            status_code=status,
            attempts=state.attempts,
            retryable=retryable,
        )
        return error, delay

    def after_exception(
        self, exc: httpx.HTTPError, url: str, state: RetryState
    ) -> tuple[InferenceError, float | None]:
        """Map a transport exception onto a guardflow error and the retry decision."""
        safe, attempts, kind = safe_url(url), state.attempts, type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            message = (
                f"{safe} did not answer in time ({kind}) after {attempts} attempt(s); raise "
                "endpoint.timeouts or lower batching.batch_size"
            )
            error: InferenceError = InferenceTimeoutError(message, url=safe, attempts=attempts)
        elif isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
            message = (
                f"could not get an answer from {safe} ({kind}) after {attempts} attempt(s); "
                "check that the model server is running and reachable"
            )
            error = InferenceConnectError(message, url=safe, attempts=attempts)
        else:
            message = f"request to {safe} failed ({kind}); check endpoint.url and TLS settings"
            return InferenceRequestError(message, url=safe, attempts=attempts), None
        return error, state.delay_after_transport_error()

    def log_retry(self, url: str, error: InferenceError, state: RetryState, delay: float) -> None:
        """Log one retry: status or error type, attempt and delay, never the payload."""
        reason = (
            f"HTTP {error.status_code}"
            if isinstance(error, InferenceHTTPError)
            else type(error).__name__
        )
        logger.warning(
            "retrying %s in %.2f s after %s (attempt %d of %d)",
            safe_url(url),
            delay,
            reason,
            state.attempts,
            self.policy.max_attempts,
        )

    def probe_unreachable(self, url: str, exc: httpx.HTTPError) -> EndpointNotReadyError:
        """The error for a readiness probe that could not reach the server."""
        return EndpointNotReadyError(
            f"the model server at {safe_url(self.endpoint.url)} is not reachable "
            f"({type(exc).__name__}); start it or check endpoint.url",
            url=safe_url(url),
        )

    def probe_answer(self, url: str, response: httpx.Response) -> None:
        """Check a readiness answer; raise EndpointNotReadyError when not ready."""
        problem = self.adapter.ready_problem(response.status_code, response.content)
        if problem is None:
            return
        if response.status_code in (401, 403):
            # A credential problem does not heal by waiting: fail now instead of retrying.
            error = EndpointNotReadyError(
                f"the model server at {safe_url(self.endpoint.url)} refused the readiness probe "
                f"with HTTP {response.status_code}: {_STATUS_HINTS[response.status_code]}",
                url=safe_url(url),
                status_code=response.status_code,
            )
            error.retryable = False
            raise error
        model = self.endpoint.model_name
        what = f"model {model!r}" if model else "the model"
        raise EndpointNotReadyError(
            f"the model server at {safe_url(self.endpoint.url)} answered its readiness probe "
            f"({urlsplit(url).path}) with {problem}: {what} is not ready or not loaded; check "
            "the model name and the server log, or retry once it has started",
            url=safe_url(url),
            status_code=response.status_code,
        )


_STATUS_HINTS = {
    401: "check endpoint.token",
    403: "check endpoint.token and its permissions",
    404: "check endpoint.url, the protocol and the model name",
    429: "the server is throttling; lower batching.concurrency or set requests_per_second",
    503: "the server is overloaded or starting; retry later or lower batching.concurrency",
}
