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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import SecretStr

from guardflow.errors import ConfigurationError
from guardflow.gates._delivery import MAX_RETRY_AFTER_S, HTTPNotifier, backoff_s
from guardflow.gates._email import EmailNotifier
from guardflow.gates._render import render_slack, render_teams
from guardflow.gates._webhook import WebhookNotifier, sign_webhook, verify_webhook_signature

if TYPE_CHECKING:
    from guardflow.gates.models import GateRecord, NotifierConfig
    from guardflow.secrets.client import VaultClient

__all__ = [
    "MAX_RETRY_AFTER_S",
    "EmailNotifier",
    "GateMessage",
    "Notifier",
    "SlackNotifier",
    "TeamsNotifier",
    "WebhookNotifier",
    "backoff_s",
    "build_notifiers",
    "sign_webhook",
    "verify_webhook_signature",
]


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


class SlackNotifier(HTTPNotifier):
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
