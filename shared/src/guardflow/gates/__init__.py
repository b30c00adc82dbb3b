"""Human approval gates: one semantics for Airflow, Prefect, the CLI and the review page.

A gate asks humans to decide before a pipeline goes on. Its id comes from the run context, so a
retried task finds its existing request and never notifies twice. The store (SQLAlchemy: SQLite by
default, PostgreSQL when several workers share gates) is the single source of truth: the first
resolution wins, quorum counts distinct reviewers, late decisions are refused, every vote keeps
reviewer, time, channel and comment. Reviewers decide by signed link (GET shows a confirmation
page, only its POST decides), on the review page (``guardflow gates serve``), with the CLI, or in
the orchestrator's own UI.

Examples:
    >>> from guardflow.gates import GatePolicy
    >>> policy = GatePolicy(required_approvals=2, assignees=["group:ml"], groups={"ml": ["ana"]})
    >>> policy.quorum("approve")
    2
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "APPROVE",
    "REJECT",
    "Decision",
    "EmailNotifier",
    "Gate",
    "GateItem",
    "GateMessage",
    "GateOutcome",
    "GatePolicy",
    "GateRecord",
    "GateStatus",
    "GateStore",
    "LinkClaims",
    "LinkSigner",
    "Notifier",
    "RoutingRule",
    "SlackNotifier",
    "TeamsNotifier",
    "TimeoutAction",
    "WebhookNotifier",
    "build_notifiers",
    "create_app",
    "export_decisions",
    "gate_page_url",
    "link_url",
    "load_items",
    "outcome_of",
    "route_items",
    "serve",
    "verify_webhook_signature",
]

# Submodules import SQLAlchemy, Starlette or httpx; load them only when a name is used.
_WHERE = {
    "APPROVE": "models",
    "REJECT": "models",
    "Decision": "models",
    "GateItem": "models",
    "GateOutcome": "models",
    "GatePolicy": "models",
    "GateRecord": "models",
    "GateStatus": "models",
    "RoutingRule": "models",
    "TimeoutAction": "models",
    "outcome_of": "models",
    "GateStore": "store",
    "LinkClaims": "tokens",
    "LinkSigner": "tokens",
    "build_notifiers": "notify",
    "Gate": "service",
    "route_items": "routing",
    "export_decisions": "export",
    "EmailNotifier": "notify",
    "GateMessage": "notify",
    "Notifier": "notify",
    "SlackNotifier": "notify",
    "TeamsNotifier": "notify",
    "WebhookNotifier": "notify",
    "verify_webhook_signature": "notify",
    "link_url": "tokens",
    "gate_page_url": "tokens",
    "load_items": "routing",
    "create_app": "server",
    "serve": "server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'guardflow.gates' has no attribute {name!r}")
    return getattr(importlib.import_module(f"guardflow.gates.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
