"""Render a gate notification for Slack, Microsoft Teams, a generic webhook and email.

Renderers are pure functions of a :class:`~guardflow.gates.notify.GateMessage`. The gate's subject,
body and context arrive masked by the service; renderers add no comments, no votes' text and no
credentials, escape what each channel treats as markup, and keep within each channel's limits
(Slack Block Kit: header 150 characters, section text 3000, button text 75).
"""

from __future__ import annotations

import html
import json
import re
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guardflow.gates.models import GateRecord
    from guardflow.gates.notify import GateMessage

__all__ = [
    "MAX_LINK_BUTTONS",
    "render_email",
    "render_slack",
    "render_teams",
    "render_webhook",
    "slack_escape",
]

MAX_LINK_BUTTONS = 19
"""Personal-link buttons per chat message; more reviewers use the review page."""

_SLACK_HEADER_MAX = 150
_SLACK_SECTION_MAX = 3000
_SLACK_FIELD_MAX = 2000
_SLACK_BUTTON_MAX = 75
_MAX_FIELDS = 10
_VALUE_MAX = 200
_ELLIPSIS = "…"


def slack_escape(text: str) -> str:
    """Escape Slack's mrkdwn control characters (``&``, ``<``, ``>``).

    Escaping ``<`` also disarms ``<!channel>``-style mentions and ``<url|text>`` links in bodies.

    Examples:
        >>> slack_escape("a < b & <!here>")
        'a &lt; b &amp; &lt;!here&gt;'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters without splitting an ``&xx;`` entity."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + _ELLIPSIS


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return _cut(_one_line(text), _VALUE_MAX)


def _context_pairs(gate: GateRecord) -> list[tuple[str, str]]:
    pairs = [(str(k), _value_text(v)) for k, v in list(gate.context.items())[:_MAX_FIELDS]]
    return pairs


def _title(message: GateMessage) -> str:
    prefix = "Escalated: approval needed" if message.event == "escalation" else "Approval needed"
    return f"{prefix}: {_one_line(message.gate.subject)}"


def _quorum_text(gate: GateRecord) -> str:
    policy = gate.policy
    approving = [o for o in policy.options if o not in policy.reject_options]
    parts = [f"{policy.required_approvals} of {', '.join(approving) or 'any option'}"]
    if policy.reject_options and policy.required_rejections > 1:
        parts.append(f"{policy.required_rejections} to {', '.join(policy.reject_options)}")
    return "needs " + "; ".join(parts)


def _expiry_iso(gate: GateRecord) -> str | None:
    return gate.expires_at.isoformat() if gate.expires_at else None


def _items_text(gate: GateRecord) -> str | None:
    if not gate.item_count and not gate.passed_count:
        return None
    return f"{gate.item_count} items to review ({gate.passed_count} passed automatically)"


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*]\s+", re.MULTILINE)


def _slack_mrkdwn(markdown: str) -> str:
    """Escape a Markdown body, then map its common forms onto Slack mrkdwn."""
    text = slack_escape(markdown)
    text = _HEADING.sub(r"*\1*", text)
    text = _BULLET.sub(r"\1• ", text)
    return _BOLD.sub(r"*\1*", text)


def _option_url(page_url: str, option: str) -> str:
    from urllib.parse import quote

    return f"{page_url}?option={quote(option, safe='')}"


def _personal_links(message: GateMessage) -> list[tuple[str, str]]:
    return sorted(message.links.items())[:MAX_LINK_BUTTONS]


def render_slack(message: GateMessage) -> dict[str, Any]:
    """Render a Slack incoming-webhook payload (Block Kit).

    Blocks: a header (the subject), the body as mrkdwn, the context as fields, a context line
    (pipeline, run, task, expiry, quorum), and buttons: "Open review page" plus one "Review as
    <name>" per personal link (at most 19).

    Args:
        message: The notification.

    Returns:
        The JSON payload (``text`` is the notification fallback).
    """
    gate = message.gate
    title = _title(message)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(title, _SLACK_HEADER_MAX), "emoji": False},
        }
    ]
    if gate.body.strip():
        body = _cut(_slack_mrkdwn(gate.body), _SLACK_SECTION_MAX)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    pairs = _context_pairs(gate)
    if pairs:
        fields = [
            {
                "type": "mrkdwn",
                "text": _cut(f"*{slack_escape(k)}*\n{slack_escape(v)}", _SLACK_FIELD_MAX),
            }
            for k, v in pairs
        ]
        blocks.append({"type": "section", "fields": fields})
    facts = [
        f"pipeline `{slack_escape(gate.pipeline)}`",
        f"run `{slack_escape(gate.run_id)}`",
        f"task `{slack_escape(gate.task_id)}`",
    ]
    if gate.expires_at is not None:
        ts = int(gate.expires_at.timestamp())
        facts.append(f"expires <!date^{ts}^{{date_short_pretty}} {{time}}|{_expiry_iso(gate)}>")
    facts.append(slack_escape(_quorum_text(gate)))
    items = _items_text(gate)
    if items:
        facts.append(items)
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(" · ".join(facts), 3000)}]}
    )
    buttons: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": "guardflow-page",
            "text": {"type": "plain_text", "text": "Open review page"},
            "url": message.page_url,
            "style": "primary",
        }
    ]
    # Decision links: each opens the review page with the option chosen; the page confirms.
    # Slack allows 25 elements per actions block: page + 5 options + 19 personal links.
    for index, option in enumerate(gate.policy.options[:5]):
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"guardflow-option-{index}",
            "text": {"type": "plain_text", "text": _cut(option.capitalize(), _SLACK_BUTTON_MAX)},
            "url": _option_url(message.page_url, option),
        }
        if option in gate.policy.reject_options:
            button["style"] = "danger"
        buttons.append(button)
    for index, (reviewer, url) in enumerate(_personal_links(message)):
        buttons.append(
            {
                "type": "button",
                "action_id": f"guardflow-link-{index}",
                "text": {
                    "type": "plain_text",
                    "text": _cut(f"Review as {_one_line(reviewer)}", _SLACK_BUTTON_MAX),
                },
                "url": url,
            }
        )
    blocks.append({"type": "actions", "elements": buttons})
    extra = len(message.links) - MAX_LINK_BUTTONS
    if extra > 0:
        note = f"{extra} more reviewers: use the review page or ask for a personal link"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {"text": slack_escape(_cut(title, _SLACK_SECTION_MAX)), "blocks": blocks}


def render_teams(message: GateMessage) -> dict[str, Any]:
    """Render a Microsoft Teams webhook payload: an Adaptive Card with open-URL actions.

    The card is wrapped as a message attachment, the form that both Teams Workflows webhooks
    and classic incoming webhooks accept.

    Args:
        message: The notification.

    Returns:
        The JSON payload.
    """
    gate = message.gate
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": _cut(_title(message), 300),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
        }
    ]
    if gate.body.strip():
        body.append({"type": "TextBlock", "text": _cut(gate.body, 3000), "wrap": True})
    facts = [{"title": k, "value": v} for k, v in _context_pairs(gate)]
    facts += [
        {"title": "Pipeline", "value": gate.pipeline},
        {"title": "Run", "value": gate.run_id},
        {"title": "Task", "value": gate.task_id},
        {"title": "Expires", "value": _expiry_iso(gate) or "never"},
        {"title": "Quorum", "value": _quorum_text(gate)},
    ]
    items = _items_text(gate)
    if items:
        facts.append({"title": "Items", "value": items})
    body.append({"type": "FactSet", "facts": facts})
    actions = [{"type": "Action.OpenUrl", "title": "Open review page", "url": message.page_url}]
    actions += [
        {
            "type": "Action.OpenUrl",
            "title": option.capitalize(),
            "url": _option_url(message.page_url, option),
        }
        for option in gate.policy.options[:5]
    ]
    actions += [
        {"type": "Action.OpenUrl", "title": f"Review as {_one_line(reviewer)}", "url": url}
        for reviewer, url in _personal_links(message)
    ]
    body.append({"type": "ActionSet", "actions": actions})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def render_webhook(message: GateMessage) -> dict[str, Any]:
    """Render the generic webhook body.

    Args:
        message: The notification.

    Returns:
        ``{"event": "gate.opened" | "gate.escalated", "gate": {...}, "links": {reviewer: url}}``;
        ``gate`` holds ids, subject, body, context (masked), options, quorum, expiry and the
        review page URL, never votes or comments.
    """
    gate = message.gate
    policy = gate.policy
    return {
        "event": "gate.escalated" if message.event == "escalation" else "gate.opened",
        "gate": {
            "id": gate.id,
            "subject": gate.subject,
            "body": gate.body,
            "context": gate.context,
            "status": gate.status.value,
            "orchestrator": gate.orchestrator,
            "pipeline": gate.pipeline,
            "run_id": gate.run_id,
            "task_id": gate.task_id,
            "map_index": gate.map_index,
            "options": list(policy.options),
            "reject_options": list(policy.reject_options),
            "required_approvals": policy.required_approvals,
            "required_rejections": policy.required_rejections,
            "escalation_level": gate.escalation_level,
            "created_at": gate.created_at.isoformat(),
            "expires_at": _expiry_iso(gate),
            "item_count": gate.item_count,
            "passed_count": gate.passed_count,
            "page_url": message.page_url,
        },
        "links": dict(sorted(message.links.items())),
    }


def render_email(message: GateMessage, reviewer: str, address: str, sender: str) -> EmailMessage:
    """Render the email for one reviewer, holding that reviewer's own link only.

    Args:
        message: The notification.
        reviewer: The reviewer the mail is for; must have a link in ``message.links``.
        address: The reviewer's address.
        sender: The From address.

    Returns:
        A multipart message: plain text and an HTML alternative (everything escaped).
    """
    gate = message.gate
    link = message.links[reviewer]
    mail = EmailMessage()
    mail["Subject"] = _cut(_title(message), 200)
    mail["From"] = sender
    mail["To"] = address
    mail["Auto-Submitted"] = "auto-generated"
    expiry = _expiry_iso(gate) or "never"
    lines = [_title(message), ""]
    if gate.body.strip():
        lines += [gate.body.strip(), ""]
    lines += [f"{k}: {v}" for k, v in _context_pairs(gate)]
    lines += [
        f"Pipeline: {gate.pipeline}   Run: {gate.run_id}   Task: {gate.task_id}",
        f"Expires: {expiry}   ({_quorum_text(gate)})",
        "",
        f"Your personal decision link ({_one_line(reviewer)}; do not forward it):",
        link,
        "",
        f"Review page: {message.page_url}",
        "",
        "Opening the link shows a confirmation page; nothing is decided until you confirm.",
    ]
    mail.set_content("\n".join(lines) + "\n")
    esc = html.escape
    paragraphs = "".join(f"<p>{esc(p)}</p>" for p in gate.body.strip().split("\n\n") if p.strip())
    rows = "".join(
        f"<tr><th align='left'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _context_pairs(gate)
    )
    html_body = (
        "<html><body>"
        f"<h2>{esc(_title(message))}</h2>{paragraphs}"
        f"<table>{rows}</table>"
        f"<p>Pipeline <code>{esc(gate.pipeline)}</code>, run <code>{esc(gate.run_id)}</code>, "
        f"task <code>{esc(gate.task_id)}</code>. "
        f"Expires {esc(expiry)} ({esc(_quorum_text(gate))}).</p>"
        f'<p><a href="{esc(link, quote=True)}">Review as {esc(_one_line(reviewer))}</a> '
        "(your personal link; do not forward it)</p>"
        f'<p><a href="{esc(message.page_url, quote=True)}">Open the review page</a></p>'
        "<p>Opening the link shows a confirmation page; nothing is decided until you confirm.</p>"
        "</body></html>"
    )
    mail.add_alternative(html_body, subtype="html")
    return mail
