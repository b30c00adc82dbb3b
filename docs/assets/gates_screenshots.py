"""Reproduce the review-page screenshots of the Gates guide.

Seeds a throw-away SQLite gate store with a few gates, serves the review page on a free local
port (uvicorn in a thread, as ``guardflow gates serve`` does), and saves with Playwright and
Debian Chromium:

- ``docs/assets/gates-review-list.png``: the pending list, as ``ana`` behind a proxy;
- ``docs/assets/gates-review-gate.png``: one gate with its context and items;
- ``docs/assets/gates-confirm.png``: the confirmation page a personal link opens.

Run from the repository root::

    .venv-core/bin/python docs/assets/gates_screenshots.py

Chromium is ``$GUARDFLOW_CHROMIUM`` or ``/usr/bin/chromium``. The data is made up; the signing key
is random and thrown away.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from guardflow.gates.models import GateItem, GatePolicy, GateRecord
from guardflow.gates.server import create_app
from guardflow.gates.store import GateStore
from guardflow.gates.tokens import LinkSigner
from guardflow.testing.gate_fixtures import CHROMIUM_ARGS, IDENTITY_HEADER

HERE = Path(__file__).resolve().parent
# Relative to now: gates in the past would already be expired when the page reads them.
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)

BODY = """Nightly **support triage** scored 1,240 tickets; 4 fell under the **0.80** confidence
threshold and wait for a human. The other 1,236 were delivered.

- Correct a label if the model got it wrong: it goes to the retraining set.
- Approve to deliver these 4, reject to hold them back."""


def _seed(store: GateStore) -> str:
    policy = GatePolicy(
        assignees=["group:support-leads"],
        groups={"support-leads": ["ana", "bob", "chen"]},
        required_approvals=1,
        expires_after_s=8 * 3600,
    )
    gates = [
        (
            "Deliver 4 low-confidence ticket labels",
            "support_triage",
            f"scheduled__{NOW:%Y-%m-%d}T06:00",
            "review_low_confidence",
            BODY,
            {"model": "ticket-intent v12", "threshold": 0.8, "scored": 1240, "to_review": 4},
        ),
        (
            "Promote churn model v7 to production",
            "churn_training",
            f"manual__{NOW:%Y-%m-%d}T08:12",
            "approve_promotion",
            "AUC **0.871** (v6: 0.854) on the March holdout; drift checks passed.",
            {"candidate": "churn v7", "auc": 0.871, "baseline_auc": 0.854},
        ),
        (
            "Send the weekly lead scores to the CRM",
            "lead_scoring",
            f"scheduled__{NOW:%Y-%m-%d}T07:00",
            "gate_delivery",
            "812 leads scored. Two columns were masked before export.",
            {"rows": 812, "masked_columns": 2},
        ),
    ]
    first = ""
    for n, (subject, pipeline, run_id, task_id, body, context) in enumerate(gates):
        gate_id = secrets.token_hex(16)
        first = first or gate_id
        created = NOW - timedelta(minutes=40 * (len(gates) - n))
        record = GateRecord(
            id=gate_id,
            subject=subject,
            body=body,
            context=context,
            policy=policy,
            created_at=created,
            expires_at=created + timedelta(hours=8),
            orchestrator="airflow",
            pipeline=pipeline,
            run_id=run_id,
            task_id=task_id,
            passed_count=1236 if n == 0 else 0,
        )
        items = []
        if n == 0:
            tickets = [
                ("T-48213", "I was charged twice for March", "billing", 0.58),
                ("T-48230", "App freezes when I open settings", "account", 0.49),
                ("T-48244", "How do I export my data?", "how-to", 0.71),
                ("T-48251", "Cancel my plan please", "billing", 0.66),
            ]
            items = [
                GateItem(
                    gate_id=gate_id,
                    item_id=ticket,
                    data={"text": text},
                    prediction=label,
                    score=score,
                )
                for ticket, text, label, score in tickets
            ]
        store.create(record, items)
    return first


def main() -> None:
    """Seed, serve, and save the three screenshots next to this script."""
    executable = os.environ.get("GUARDFLOW_CHROMIUM", "/usr/bin/chromium")
    with tempfile.TemporaryDirectory() as tmp:
        store = GateStore(f"sqlite:///{Path(tmp) / 'gates.db'}")
        signer = LinkSigner(secrets.token_bytes(48))
        gate_id = _seed(store)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = create_app(store, signer, identity_header=IDENTITY_HEADER, base_url=url)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                page.set_extra_http_headers({IDENTITY_HEADER: "ana"})
                page.goto(f"{url}/")
                page.screenshot(path=HERE / "gates-review-list.png", full_page=True)
                page.goto(f"{url}/gates/{gate_id}")
                page.get_by_label("Label for item T-48230").fill("bug")
                page.screenshot(path=HERE / "gates-review-gate.png", full_page=True)
                # A link is opened without the proxy header, in a fresh context.
                link = browser.new_page(viewport={"width": 1100, "height": 760})
                token = signer.issue(gate_id, "bob", ttl_s=3600, option="approve")
                link.goto(f"{url}/l/{token}")
                link.screenshot(path=HERE / "gates-confirm.png", full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            store.dispose()
    for name in ("gates-review-list.png", "gates-review-gate.png", "gates-confirm.png"):
        print(HERE / name)


if __name__ == "__main__":
    main()
