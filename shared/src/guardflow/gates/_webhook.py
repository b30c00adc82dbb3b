"""The signed generic webhook: :class:`WebhookNotifier` and the signature its receivers check.

:func:`sign_webhook` computes the ``X-Guardflow-Signature`` header (format in
:mod:`guardflow.gates.notify`), :func:`verify_webhook_signature` checks it on the receiving side.
All three are re-exported by :mod:`guardflow.gates.notify`, the place to import them from.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from guardflow.gates._delivery import MAX_RETRY_AFTER_S, HTTPNotifier
from guardflow.gates._render import render_webhook

if TYPE_CHECKING:
    from guardflow.gates.notify import GateMessage

__all__ = ["WebhookNotifier", "sign_webhook", "verify_webhook_signature"]


def sign_webhook(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """Return the ``X-Guardflow-Signature`` value for a body.

    Args:
        secret: The shared secret.
        timestamp: The ``X-Guardflow-Timestamp`` value (unix seconds as text).
        body: The exact body bytes.

    Returns:
        ``sha256=<hex>``.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_webhook_signature(
    secret: str | bytes,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Check a guardflow webhook's signature and freshness (for receivers).

    Args:
        secret: The shared secret.
        timestamp: The ``X-Guardflow-Timestamp`` header.
        body: The exact body bytes received.
        signature: The ``X-Guardflow-Signature`` header.
        tolerance_s: How far the timestamp may be from now (refuses old replays).
        now: Current unix time (default: now).

    Returns:
        Whether the signature matches and the timestamp is fresh.

    Examples:
        >>> sig = sign_webhook("s3cret", "1700000000", b"{}")
        >>> verify_webhook_signature(
        ...     "s3cret", timestamp="1700000000", body=b"{}", signature=sig, now=1700000001
        ... )
        True
    """
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign_webhook(secret, timestamp, body), signature)


class WebhookNotifier(HTTPNotifier):
    """Posts a JSON gate event to any URL, HMAC-signed when a secret is set.

    Args:
        url: Where to POST (may hold credentials: never logged).
        secret: Shared secret for ``X-Guardflow-Signature``; unsigned when ``None``.
        retries: Retries after the first attempt.
        timeout: Seconds per request.
        sleep: Blocking sleep between retries.
        max_retry_after_s: Cap on a server-requested ``Retry-After``.
        clock: Unix time source for the timestamp header.
    """

    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        retries: int = 3,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            url, retries=retries, timeout=timeout, sleep=sleep, max_retry_after_s=max_retry_after_s
        )
        self._secret = secret
        self._clock = clock

    def __repr__(self) -> str:
        return "WebhookNotifier(url='**********')"

    def render(self, message: GateMessage) -> dict[str, Any]:
        """Return the event body (see :func:`~guardflow.gates._render.render_webhook`)."""
        return render_webhook(message)

    def headers(self, body: bytes) -> dict[str, str]:
        """Return the timestamp and signature headers (signed again on every attempt)."""
        timestamp = str(int(self._clock()))
        headers = {"X-Guardflow-Timestamp": timestamp, "X-Guardflow-Event": "gate"}
        if self._secret is not None:
            headers["X-Guardflow-Signature"] = sign_webhook(self._secret, timestamp, body)
        return headers
