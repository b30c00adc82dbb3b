"""Announce a gate to reviewers: Slack, Microsoft Teams, a signed generic webhook and email.

Every notifier retries what may pass (HTTP 429 and 5xx, connection failures, timeouts; SMTP 4xx
replies and dropped connections), honouring ``Retry-After`` up to a cap, and fails at once on
anything else. Failures raise :class:`~guardflow.errors.NotificationError` naming the notifier kind
and the HTTP status or SMTP code, never the webhook URL (a credential), the SMTP password, the links
or the message. HTTP requests go straight to an httpx transport so httpx's request log line, which
would print the URL, is never written.

Generic webhook bodies are signed: ``X-Guardflow-Timestamp: <unix seconds>`` and
``X-Guardflow-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body bytes>")>``; receivers
check them with :func:`verify_webhook_signature`.

Examples:
    >>> from guardflow.gates.models import SlackNotifierConfig
    >>> notifiers = build_notifiers(
    ...     [SlackNotifierConfig(webhook_url="https://hooks.slack.com/services/T/B/x")], emails={}
    ... )
    >>> notifiers
    [SlackNotifier(webhook_url='**********')]
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import SecretStr

from guardflow.errors import ConfigurationError, NotificationError
from guardflow.gates._render import render_email, render_slack, render_teams, render_webhook

if TYPE_CHECKING:
    from email.message import EmailMessage

    from guardflow.gates.models import EmailNotifierConfig, GateRecord, NotifierConfig
    from guardflow.secrets.client import VaultClient

__all__ = [
    "EmailNotifier",
    "GateMessage",
    "Notifier",
    "SlackNotifier",
    "TeamsNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "sign_webhook",
    "verify_webhook_signature",
]

logger = logging.getLogger("guardflow.gates.notify")

MAX_RETRY_AFTER_S = 30.0
"""The longest ``Retry-After`` honoured; longer requests wait this long."""


@dataclass(frozen=True)
class GateMessage:
    """What a notifier announces.

    Args:
        gate: The gate (subject, body and context already masked by the service).
        event: ``"opened"`` or ``"escalation"``.
        page_url: The gate's review page.
        links: Reviewer name to that reviewer's personal signed link (may be empty).
    """

    gate: GateRecord
    event: str
    page_url: str
    links: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Notifier(Protocol):
    """Something that announces a gate; ``send`` raises NotificationError after its retries."""

    kind: str

    def send(self, message: GateMessage) -> None:
        """Deliver ``message``.

        Raises:
            NotificationError: Delivery failed for good.
        """


def backoff_s(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1-based) when the server named no delay."""
    return float(min(0.5 * 2 ** (attempt - 1), 8.0))


class _HTTPNotifier:
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


class SlackNotifier(_HTTPNotifier):
    """Posts a Block Kit message to a Slack incoming webhook.

    The message's decision buttons open the review page, where the reviewer signs in (identity
    header from the proxy) and confirms. Personal signed links ("Review as <name>") are left out
    unless ``personal_links`` is set: a link stands in for its reviewer's login, and everyone in
    a shared channel would see every reviewer's link. Set it only for private channels or DMs.

    Args:
        webhook_url: The incoming-webhook URL (a credential: never logged).
        personal_links: Include each reviewer's personal signed link as a button.
        retries: Retries after the first attempt.
        timeout: Seconds per request.
        sleep: Blocking sleep between retries (tests inject a recorder).
        max_retry_after_s: Cap on a server-requested ``Retry-After``.
    """

    kind = "slack"

    def __init__(
        self,
        webhook_url: str,
        *,
        personal_links: bool = False,
        retries: int = 3,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
    ) -> None:
        super().__init__(
            webhook_url,
            retries=retries,
            timeout=timeout,
            sleep=sleep,
            max_retry_after_s=max_retry_after_s,
        )
        self.personal_links = personal_links

    def _shown(self, message: GateMessage) -> GateMessage:
        return message if self.personal_links else dataclasses.replace(message, links={})

    def render(self, message: GateMessage) -> dict[str, Any]:
        """Return the Block Kit payload (see :func:`~guardflow.gates._render.render_slack`)."""
        return render_slack(self._shown(message))


class TeamsNotifier(SlackNotifier):
    """Posts an Adaptive Card to a Microsoft Teams webhook (Workflows or classic connector).

    Personal links are left out unless ``personal_links`` is set, as for Slack.

    Args:
        webhook_url: The webhook URL (a credential: never logged).
        personal_links: Include each reviewer's personal signed link as an action.
        retries: Retries after the first attempt.
        timeout: Seconds per request.
        sleep: Blocking sleep between retries.
        max_retry_after_s: Cap on a server-requested ``Retry-After``.
    """

    kind = "teams"

    def render(self, message: GateMessage) -> dict[str, Any]:
        """Return the card payload (see :func:`~guardflow.gates._render.render_teams`)."""
        return render_teams(self._shown(message))


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


class WebhookNotifier(_HTTPNotifier):
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


class EmailNotifier:
    """Sends each reviewer who has a personal link and an address one mail with that link only.

    Args:
        config: Host, port, sender, login and TLS settings.
        password: The SMTP password, already resolved (never logged).
        emails: Reviewer name to address.
        retries: Retries per mail after the first attempt (SMTP 4xx and dropped connections).
        sleep: Blocking sleep between retries.
    """

    kind = "email"

    def __init__(
        self,
        config: EmailNotifierConfig,
        *,
        password: str | None,
        emails: Mapping[str, str],
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._password = password
        self.emails = dict(emails)
        self.retries = max(0, int(retries))
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self.config.host!r}, port={self.config.port})"

    def send(self, message: GateMessage) -> None:
        """Send one mail per reviewer in ``message.links`` with an address.

        Every reviewer is tried even when one fails.

        Raises:
            NotificationError: A mail could not be sent (names the reviewer count and the SMTP
                reply code, never addresses or the password).
        """
        recipients = [r for r in sorted(message.links) if self.emails.get(r)]
        skipped = len(message.links) - len(recipients)
        if skipped:
            logger.info(
                "gate %s: email notifier: %d reviewer(s) with a link have no address in 'emails'",
                message.gate.id,
                skipped,
            )
        failures: list[str] = []
        retryable = False
        for reviewer in recipients:
            mail = render_email(message, reviewer, self.emails[reviewer], self.config.sender)
            error = self._deliver(mail, gate_id=message.gate.id)
            if error is not None:
                failures.append(error[0])
                retryable = retryable or error[1]
        if failures:
            raise NotificationError(
                f"email notifier: {len(failures)} of {len(recipients)} mail(s) not sent "
                f"({'; '.join(sorted(set(failures)))})",
                gate_id=message.gate.id,
                retryable=retryable,
            )
        if recipients:
            logger.info(
                "gate %s: email notification sent to %d reviewer(s)",
                message.gate.id,
                len(recipients),
            )

    def _deliver(self, mail: EmailMessage, *, gate_id: str) -> tuple[str, bool] | None:
        """Send one mail with retries; return (problem, retryable) on failure."""
        import smtplib

        attempts = self.retries + 1
        problem = "nothing was sent"
        for attempt in range(1, attempts + 1):
            try:
                self._smtp_send(mail)
                return None
            except smtplib.SMTPRecipientsRefused as exc:
                codes = sorted({code for code, _ in exc.recipients.values()})
                problem = f"recipient refused with SMTP {codes}"
                if all(code >= 500 for code in codes):
                    return problem, False
            except smtplib.SMTPResponseException as exc:
                # Reply text may echo what the client sent; only the code is reported.
                problem = f"SMTP server answered {exc.smtp_code}"
                if exc.smtp_code >= 500:
                    return problem, False
            except smtplib.SMTPServerDisconnected:
                problem = "the SMTP server closed the connection"
            except smtplib.SMTPException as exc:
                problem = f"SMTP error ({type(exc).__name__})"
                return problem, False
            except TimeoutError:
                problem = "the SMTP server timed out"
            except OSError as exc:
                problem = f"could not connect to the SMTP server ({type(exc).__name__})"
            if attempt < attempts:
                wait = backoff_s(attempt)
                logger.warning(
                    "gate %s: email notifier: %s; retry %d of %d in %.1f s",
                    gate_id,
                    problem,
                    attempt,
                    self.retries,
                    wait,
                )
                self._sleep(wait)
        return f"{problem} after {attempts} attempts", True

    def _smtp_send(self, mail: EmailMessage) -> None:
        import smtplib
        import ssl

        config = self.config
        smtp: smtplib.SMTP
        if config.ssl:
            smtp = smtplib.SMTP_SSL(
                config.host,
                config.port,
                timeout=config.timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with smtp:
            if config.starttls and not config.ssl:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, self._password or "")
            smtp.send_message(mail)


def build_notifiers(
    configs: Sequence[NotifierConfig],
    *,
    emails: Mapping[str, str],
    vault: VaultClient | None = None,
) -> list[Notifier]:
    """Build notifiers from a policy's configs, resolving ``vault://`` credentials.

    Args:
        configs: ``policy.notifiers``.
        emails: Reviewer name to address (``policy.emails``), for the email notifier.
        vault: Client for ``vault://`` references (default: ``VaultClient.from_env()`` when a
            reference is present, closed once the values are read).

    Returns:
        One notifier per config, in order.

    Raises:
        ConfigurationError: A reference is malformed or names no key.
        SecretsError: Vault could not be read.
    """
    resolver = _Resolver(vault)
    try:
        notifiers: list[Notifier] = []
        for config in configs:
            if config.kind == "slack":
                url = resolver.text(config.webhook_url, "slack")
                notifiers.append(SlackNotifier(url, personal_links=config.personal_links))
            elif config.kind == "teams":
                url = resolver.text(config.webhook_url, "teams")
                notifiers.append(TeamsNotifier(url, personal_links=config.personal_links))
            elif config.kind == "webhook":
                secret = resolver.text(config.secret, "webhook") if config.secret else None
                url = resolver.text(SecretStr(config.url), "webhook")
                notifiers.append(WebhookNotifier(url, secret=secret))
            else:
                password = resolver.text(config.password, "email") if config.password else None
                notifiers.append(EmailNotifier(config, password=password, emails=emails))
        return notifiers
    finally:
        resolver.close()


class _Resolver:
    """Reveals SecretStr values, reading ``vault://`` ones through one lazily made client."""

    def __init__(self, vault: VaultClient | None) -> None:
        self._vault = vault
        self._own: VaultClient | None = None

    def text(self, secret: SecretStr, kind: str) -> str:
        from guardflow.secrets.refs import SecretRef

        value = secret.get_secret_value()
        if not SecretRef.is_ref(value):
            return value
        ref = SecretRef.parse(value)
        if ref.key is None:
            raise ConfigurationError(
                f"{kind} notifier: Vault reference {value!r} names no key; "
                "write vault://MOUNT/PATH#KEY"
            )
        client = self._vault
        if client is None:
            from guardflow.secrets.client import VaultClient

            client = self._own = self._own or VaultClient.from_env()
        resolved = client.get(ref)
        reveal = getattr(resolved, "reveal", None)
        text = reveal() if callable(reveal) else None
        if not isinstance(text, str):  # pragma: no cover - keyed refs give values
            raise ConfigurationError(f"{kind} notifier: Vault reference {value!r} names no key")
        return text

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
