"""The review page, ``guardflow gates serve``: pending gates, a gate's context and items, votes.

Reviewers authenticate in one of two ways:

- a personal signed link ``/l/<token>``: GET shows a confirmation page and never decides (link
  previews and mail scanners open links); only the POST from that page records corrections and
  the vote, channel ``link``, and consumes the link's nonce so it cannot be replayed;
- an identity header set by an authenticating proxy (``identity_header``, e.g.
  ``X-Forwarded-User``): ``/`` lists the gates the user may vote on, ``/gates/<id>`` shows one,
  and its form POSTs (with a CSRF token bound to gate and user) record the vote, channel ``page``.

Ordering of a link POST: the token is verified (403 "forged or damaged" / "expired"); a link whose
reviewer already voted is "already used" (403); then the gate is checked (closed: 409; option or
reviewer not allowed: 403) *before* the nonce is consumed, so a link that hit a closed gate or a
refusal is not burnt and nothing is recorded. Only then is the nonce consumed (a replay gets 403
"already used"), changed labels stored as corrections, and the vote recorded (through
``Gate.decide``, which audits it). A link POST needs no CSRF token: the unguessable link token in
the URL plays that role; page POSTs carry a CSRF token bound to gate and reviewer.

Every response carries ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``,
``X-Frame-Options: DENY`` and a CSP without scripts. Tokens and comments are never logged; the
access-log filter :class:`RedactLinkTokens` turns ``/l/<token>`` into ``/l/<redacted>``.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from guardflow.errors import MissingExtraError

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(module=exc.name or "starlette", extra="gates") from exc

from guardflow.errors import ConfigurationError
from guardflow.gates._review import CSP, Review

if TYPE_CHECKING:
    from guardflow.gates.store import GateStore
    from guardflow.gates.tokens import LinkSigner

__all__ = ["RedactLinkTokens", "create_app", "serve"]

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_LINK_PATH = re.compile(r"/l/[^\s/?#\"]+")


class RedactLinkTokens(logging.Filter):
    """A logging filter that replaces ``/l/<token>`` with ``/l/<redacted>`` in log records.

    uvicorn's access log writes request paths, and a personal link's path is its credential.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact link tokens in the record's message and arguments; always keep the record."""
        if isinstance(record.msg, str):
            record.msg = _LINK_PATH.sub("/l/<redacted>", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _LINK_PATH.sub("/l/<redacted>", a) if isinstance(a, str) else a for a in record.args
            )
        return True


class _SecurityHeaders:
    """ASGI middleware adding the security headers (and a default CSP) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CSP.format(style="").encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(
    store: GateStore,
    signer: LinkSigner,
    *,
    identity_header: str | None = None,
    base_url: str | None = None,
) -> Starlette:
    """Build the review page application.

    Args:
        store: The gate store (the single source of truth).
        signer: Verifies personal links and issues/checks the page's CSRF tokens.
        identity_header: Header set by an authenticating proxy that names the reviewer (e.g.
            ``X-Forwarded-User``); ``None`` means only personal links authenticate.
        base_url: Public URL of the page, recorded on the app as ``app.state.base_url``.

    Returns:
        A Starlette ASGI application.

    Examples:
        >>> app = create_app(GateStore(), LinkSigner.from_ref())  # doctest: +SKIP
    """
    review = Review(store, signer, identity_header)
    app = Starlette(
        routes=[
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/", review.index, methods=["GET"]),
            Route("/history", review.history, methods=["GET"]),
            Route("/gates/{gate_id}", review.gate_get, methods=["GET"]),
            Route("/gates/{gate_id}/decide", review.gate_post, methods=["POST"]),
            Route("/l/{token}", review.link_get, methods=["GET"]),
            Route("/l/{token}", review.link_post, methods=["POST"]),
        ]
    )
    app.add_middleware(_SecurityHeaders)
    app.state.base_url = base_url
    return app


def serve(
    *,
    store_url: str | None,
    host: str = "127.0.0.1",
    port: int = 8765,
    identity_header: str | None = None,
    signing_key_ref: str | None = None,
    base_url: str | None = None,
) -> None:
    """Run the review page with uvicorn until interrupted (``guardflow gates serve``).

    Args:
        store_url: SQLAlchemy URL of the gate store; ``None`` uses ``$GUARDFLOW_GATES_DB``.
        host: Interface to bind (keep ``127.0.0.1`` behind a proxy).
        port: TCP port.
        identity_header: Proxy header naming the reviewer; ``None`` accepts only links.
        signing_key_ref: Where the link-signing key lives (``env:NAME`` or ``vault://...``);
            default ``env:GUARDFLOW_GATES_SIGNING_KEY``.
        base_url: Public URL of the page (informational).

    Raises:
        ConfigurationError: The signing key is missing or too short.
    """
    import uvicorn

    from guardflow.gates.store import GateStore
    from guardflow.gates.tokens import LinkSigner

    ref = signing_key_ref or "env:GUARDFLOW_GATES_SIGNING_KEY"
    try:
        signer = LinkSigner.from_ref(ref)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"the review page needs the link-signing key from {ref} (at least 32 random bytes; "
            f"set the variable or pass --signing-key-ref): {exc.message}"
        ) from None
    app = create_app(
        GateStore(store_url), signer, identity_header=identity_header, base_url=base_url
    )
    config = uvicorn.Config(app, host=host, port=port, server_header=False, proxy_headers=True)
    # uvicorn configures its loggers in Config(); the filter goes on afterwards.
    logging.getLogger("uvicorn.access").addFilter(RedactLinkTokens())
    uvicorn.Server(config).run()
