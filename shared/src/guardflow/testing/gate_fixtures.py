"""Pytest fixtures for approval gates: a store, a signer, the real review page, headless Chromium.

| fixture | scope | gives |
|---|---|---|
| ``gate_store`` | function | a :class:`~guardflow.gates.store.GateStore` on a SQLite file in ``tmp_path`` |
| ``gate_signer`` | function | a :class:`~guardflow.gates.tokens.LinkSigner` with a random key |
| ``gate_server`` | function | :class:`GateServer`: the review page served by uvicorn on a free port |
| ``chromium_page`` | function | a Playwright page in headless Debian Chromium |

The server runs in a thread of the test process with the identity header ``X-Forwarded-User``;
its access log goes through the token-redacting filter, so ``caplog`` sees what operators see.
Chromium is ``$GUARDFLOW_CHROMIUM`` or ``/usr/bin/chromium``; tests using ``chromium_page`` are
skipped when neither exists.
"""  # noqa: E501

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from guardflow.gates.store import GateStore
    from guardflow.gates.tokens import LinkSigner

__all__ = [
    "IDENTITY_HEADER",
    "GateServer",
    "chromium_page",
    "gate_server",
    "gate_signer",
    "gate_store",
]

IDENTITY_HEADER = "X-Forwarded-User"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class GateServer:
    """The review page running on ``127.0.0.1`` for a test.

    Attributes:
        url: Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash).
        store: The store the page reads and writes.
        signer: The signer the page verifies links with.
        identity_header: The header naming the reviewer (``X-Forwarded-User``).
    """

    url: str
    store: GateStore
    signer: LinkSigner
    identity_header: str = IDENTITY_HEADER
    _server: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def link(
        self, gate_id: str, reviewer: str, *, ttl_s: float = 3600.0, option: str | None = None
    ) -> str:
        """Return a personal signed link to this server for ``reviewer`` on ``gate_id``."""
        from guardflow.gates.tokens import link_url

        token = self.signer.issue(gate_id, reviewer, ttl_s=ttl_s, option=option)
        return link_url(self.url, token)

    def headers(self, reviewer: str) -> dict[str, str]:
        """Return the request headers a proxy would add for ``reviewer``."""
        return {self.identity_header: reviewer}

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


@pytest.fixture
def gate_store(tmp_path: Path) -> Iterator[GateStore]:
    """A gate store on a fresh SQLite file in the test's ``tmp_path``."""
    from guardflow.gates.store import GateStore

    store = GateStore(f"sqlite:///{tmp_path / 'gates.db'}")
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def gate_signer() -> LinkSigner:
    """A link signer with a random 48-byte key (different in every test)."""
    from guardflow.gates.tokens import LinkSigner

    return LinkSigner(secrets.token_bytes(48))


@pytest.fixture
def gate_server(gate_store: GateStore, gate_signer: LinkSigner) -> Iterator[GateServer]:
    """The review page (``create_app``) served by uvicorn in a thread on a free local port.

    Yields:
        A :class:`GateServer`: ``.url``, ``.store``, ``.signer``, ``.identity_header``,
        ``.link(gate_id, reviewer)``, ``.headers(reviewer)``.
    """
    import uvicorn

    from guardflow.gates.server import RedactLinkTokens, create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    app = create_app(gate_store, gate_signer, identity_header=IDENTITY_HEADER, base_url=url)
    # log_config=None keeps uvicorn's loggers propagating to the root logger (caplog sees them).
    config = uvicorn.Config(app, log_config=None, server_header=False, lifespan="off")
    access = logging.getLogger("uvicorn.access")
    redact = RedactLinkTokens()
    access.addFilter(redact)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="gate-server", daemon=True
    )
    thread.start()
    handle = GateServer(url, gate_store, gate_signer, _server=server, _thread=thread)
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            handle.stop()
            raise RuntimeError("the gate review page did not start")
        time.sleep(0.02)
    try:
        yield handle
    finally:
        handle.stop()
        sock.close()
        access.removeFilter(redact)


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    """A Playwright ``Page`` in headless Debian Chromium (a fresh browser per test).

    Yields:
        ``playwright.sync_api.Page``; use ``page.set_extra_http_headers`` to act behind a proxy.
    """
    executable = os.environ.get("GUARDFLOW_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.skip(f"Chromium not found at {executable} (set GUARDFLOW_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
            context.close()
        finally:
            browser.close()
