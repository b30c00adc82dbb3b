"""Real local endpoints that gate notifications are delivered to in tests.

:class:`NotificationReceiver` is a stdlib HTTP server on ``127.0.0.1`` that records every JSON POST
(Slack, Teams and generic webhooks all look alike on the wire) and can answer the next requests
with a scripted status. :class:`SMTPSink` is an aiosmtpd server that keeps every mail it accepts
as an :class:`email.message.EmailMessage` and accepts any login. Both are usable outside pytest
(context managers); the fixtures ``notification_receiver`` and ``smtp_sink`` in
:mod:`guardflow.testing` start one per test.

Examples:
    >>> with NotificationReceiver() as receiver:
    ...     receiver.url("/slack").startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections import deque
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple

from guardflow.testing._ports import free_port
from guardflow.testing._service import StartStop

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "NotificationReceiver",
    "ReceivedRequest",
    "SMTPSink",
    "notification_receiver_fixture",
    "smtp_sink_fixture",
]


class ReceivedRequest(NamedTuple):
    """One POST the receiver got: path, headers (lower-case names) and the decoded JSON body.

    ``json`` is ``None`` when the body is not JSON; the raw bytes are in
    :attr:`NotificationReceiver.bodies` at the same index.
    """

    path: str
    headers: dict[str, str]
    json: Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes request lines (paths hold webhook credentials) to stderr.
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, retry_after = self.server.owner._record(self.path, headers, body, raw)
        payload = b"ok" if status < 400 else b"scripted failure"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: NotificationReceiver


class NotificationReceiver(StartStop):
    """A webhook endpoint on ``127.0.0.1`` (free port) that records what it receives.

    Attributes:
        requests: Every POST received, in order (scripted failures included).
        bodies: The raw body bytes, same order (to check webhook signatures).
        statuses: The status answered to each, same order.
    """

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.bodies: list[bytes] = []
        self.statuses: list[int] = []
        self._faults: deque[tuple[int, str | None]] = deque()
        self._cond = threading.Condition()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._httpd is None:
            raise RuntimeError("the receiver is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str = "/hook") -> str:
        """Return the URL of ``path`` on this receiver (any path is accepted)."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def delivered(self) -> list[ReceivedRequest]:
        """Requests answered with a 2xx status."""
        with self._cond:
            return [r for r, s in zip(self.requests, self.statuses, strict=True) if s < 300]

    def fail_next(self, n: int, status: int, retry_after: str | float | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (and ``Retry-After``, if given)."""
        header = None if retry_after is None else str(retry_after)
        with self._cond:
            self._faults.extend([(status, header)] * n)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Wait until ``n`` requests arrived and return them all.

        Raises:
            AssertionError: Fewer arrived within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError(
                    f"notification receiver got {len(self.requests)} of {n} requests "
                    f"within {timeout} s"
                )
            return list(self.requests)

    def _record(
        self, path: str, headers: dict[str, str], body: Any, raw: bytes
    ) -> tuple[int, str | None]:
        with self._cond:
            status, retry_after = self._faults.popleft() if self._faults else (200, None)
            self.requests.append(ReceivedRequest(path, headers, body))
            self.bodies.append(raw)
            self.statuses.append(status)
            self._cond.notify_all()
            return status, retry_after

    def start(self) -> Self:
        """Start serving in a background thread."""
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="notification-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = None


class SMTPSink(StartStop):
    """An SMTP server on ``127.0.0.1`` (aiosmtpd) that keeps every mail it accepts.

    Any ``AUTH PLAIN``/``LOGIN`` succeeds (TLS not required), so notifiers configured with a login
    work against it. Needs ``aiosmtpd``.

    Attributes:
        host: ``127.0.0.1``.
        port: The port it listens on.
        messages: Accepted mails, parsed, in order.
        recipients: The envelope recipients of each mail, same order.
        logins: User names that logged in (passwords are not kept).
    """

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.logins: list[str] = []
        self._faults: deque[str] = deque()
        self._cond = threading.Condition()
        self._controller: Any = None

    def fail_next(self, n: int, code: int = 451) -> None:
        """Answer the DATA of the next ``n`` mails with ``code`` (4xx: transient, 5xx: final)."""
        with self._cond:
            self._faults.extend([f"{code} scripted failure"] * n)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until ``n`` mails were accepted and return them all.

        Raises:
            AssertionError: Fewer arrived within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= n, timeout):
                raise AssertionError(
                    f"SMTP sink got {len(self.messages)} of {n} mails within {timeout} s"
                )
            return list(self.messages)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: keep the mail (or answer a scripted failure)."""
        with self._cond:
            if self._faults:
                return self._faults.popleft()
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(parsed)
            self.recipients.append(list(envelope.rcpt_tos))
            self._cond.notify_all()
        return "250 Message accepted"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        login = getattr(auth_data, "login", b"")
        name = login.decode() if isinstance(login, bytes) else str(login)
        with self._cond:
            self.logins.append(name)
        # Keep only the name: aiosmtpd logs the returned AuthResult at DEBUG level.
        return AuthResult(success=True, auth_data=name)

    def start(self) -> Self:
        """Start the server in its own thread."""
        from aiosmtpd.controller import Controller

        self.port = free_port()
        controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def notification_receiver_fixture() -> Iterator[NotificationReceiver]:
    """Generator behind the ``notification_receiver`` fixture."""
    with NotificationReceiver() as receiver:
        yield receiver


def smtp_sink_fixture() -> Iterator[SMTPSink]:
    """Generator behind the ``smtp_sink`` fixture."""
    with SMTPSink() as sink:
        yield sink
