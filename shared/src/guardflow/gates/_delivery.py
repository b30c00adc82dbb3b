"""Delivery with retries shared by the notifiers: the backoff, the ``Retry-After`` cap, HTTP POSTs.

:class:`HTTPNotifier` is the base of the Slack, Teams and generic webhook notifiers; the email
notifier uses :func:`backoff_s` between SMTP attempts. Kept apart from
:mod:`guardflow.gates.notify` so the webhook and email notifiers, in their own modules, build on it
without importing the module that re-exports them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from guardflow.errors import ConfigurationError, NotificationError

if TYPE_CHECKING:
    from guardflow.gates.notify import GateMessage

__all__ = ["MAX_RETRY_AFTER_S", "HTTPNotifier", "backoff_s"]

# Every notifier logs as guardflow.gates.notify, so one logger configures them all.
logger = logging.getLogger("guardflow.gates.notify")

MAX_RETRY_AFTER_S = 30.0
"""The longest ``Retry-After`` honoured; longer requests wait this long."""


def backoff_s(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1-based) when the server named no delay."""
    return float(min(0.5 * 2 ** (attempt - 1), 8.0))


class HTTPNotifier:
    """POSTs JSON to a URL with retries; subclasses render the payload and may add headers."""

    kind = "http"

    def __init__(
        self,
        url: str,
        *,
        retries: int = 3,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"{self.kind} notifier: the URL must start with http:// or https:// (not shown)"
            )
        self._url = url
        self.retries = max(0, int(retries))
        self.timeout = timeout
        self._sleep = sleep
        self._max_retry_after_s = max_retry_after_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(webhook_url='**********')"

    def render(self, message: GateMessage) -> dict[str, Any]:  # pragma: no cover - abstract
        """Return the JSON payload for ``message``."""
        raise NotImplementedError

    def headers(self, body: bytes) -> dict[str, str]:
        """Return extra headers for a body (signatures)."""
        return {}

    def send(self, message: GateMessage) -> None:
        """POST the rendered message, retrying 429/5xx/connection failures.

        Raises:
            NotificationError: A non-retryable status, or retries exhausted.
        """
        body = json.dumps(self.render(message), separators=(",", ":"), default=str).encode()
        self._post(body, gate_id=message.gate.id)

    def _post(self, body: bytes, *, gate_id: str) -> None:
        import httpx

        from guardflow.inference.retry import parse_retry_after

        attempts = self.retries + 1
        problem = "nothing was sent"
        # A bare transport: httpx.Client logs every request URL at INFO level.
        with httpx.HTTPTransport(retries=0) as transport:
            for attempt in range(1, attempts + 1):
                request = httpx.Request(
                    "POST",
                    self._url,
                    content=body,
                    headers={"Content-Type": "application/json", **self.headers(body)},
                    extensions={"timeout": httpx.Timeout(self.timeout).as_dict()},
                )
                delay: float | None = None
                try:
                    response = transport.handle_request(request)
                    try:
                        response.read()
                    finally:
                        response.close()
                except httpx.TimeoutException:
                    problem = "the request timed out"
                except httpx.TransportError as exc:
                    problem = f"could not connect ({type(exc).__name__})"
                else:
                    status = response.status_code
                    if 200 <= status < 300:
                        logger.info(
                            "gate %s: %s notification delivered (attempt %d)",
                            gate_id,
                            self.kind,
                            attempt,
                        )
                        return
                    if status != 429 and status < 500:
                        raise NotificationError(
                            f"{self.kind} notifier: the webhook answered HTTP {status}; "
                            "not retried, check the webhook URL and its permissions",
                            gate_id=gate_id,
                        )
                    problem = f"the webhook answered HTTP {status}"
                    requested = parse_retry_after(response.headers.get("retry-after"))
                    if requested is not None:
                        delay = min(requested, self._max_retry_after_s)
                if attempt < attempts:
                    wait = backoff_s(attempt) if delay is None else delay
                    logger.warning(
                        "gate %s: %s notifier: %s; retry %d of %d in %.1f s",
                        gate_id,
                        self.kind,
                        problem,
                        attempt,
                        self.retries,
                        wait,
                    )
                    self._sleep(wait)
        raise NotificationError(
            f"{self.kind} notifier: {problem} after {attempts} attempts",
            gate_id=gate_id,
            retryable=True,
        )
