"""The email notifier: one mail per reviewer, with that reviewer's personal link only.

Re-exported by :mod:`guardflow.gates.notify`, the place to import it from. SMTP 4xx replies and
dropped connections are retried; failures name the SMTP reply code, never addresses, the password
or the reply text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from guardflow.errors import NotificationError
from guardflow.gates._delivery import backoff_s
from guardflow.gates._render import render_email

if TYPE_CHECKING:
    from email.message import EmailMessage

    from guardflow.gates.models import EmailNotifierConfig
    from guardflow.gates.notify import GateMessage

__all__ = ["EmailNotifier"]

# Every notifier logs as guardflow.gates.notify, so one logger configures them all.
logger = logging.getLogger("guardflow.gates.notify")


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
