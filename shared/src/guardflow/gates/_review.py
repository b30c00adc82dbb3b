"""The review page's request handlers: rendering, the link and page flows, recording a vote.

:class:`Review` holds one store and signer; :func:`~guardflow.gates.server.create_app` routes to
its handlers. The ordering of a link POST, the authentication and the headers are described in
:mod:`guardflow.gates.server`.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardflow.errors import MissingExtraError

try:
    import jinja2
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(module=exc.name or "starlette", extra="gates") from exc

from guardflow.errors import (
    GateClosedError,
    GateError,
    GateNotFoundError,
    GateTokenError,
    GateVoteRefusedError,
)
from guardflow.gates._markdown import render_markdown
from guardflow.gates.models import GateItem, GateRecord, GateStatus

if TYPE_CHECKING:
    from guardflow.gates.store import GateStore
    from guardflow.gates.tokens import LinkClaims, LinkSigner

__all__ = ["CSP", "Review", "coerce", "show", "when"]

# The handlers log as the review page, guardflow.gates.server.
logger = logging.getLogger("guardflow.gates.server")

CSP = "default-src 'none'; {style}form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
_EPOCH = datetime(1970, 1, 2, tzinfo=timezone.utc)
_MAX_TOKEN = 4096
_MAX_COMMENT = 4000


def when(value: datetime | str | None) -> str:
    """Render a time as ``YYYY-MM-DD HH:MM UTC`` (the ``when`` template filter)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return "?"
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def show(value: Any) -> str:
    """Render a value as text, JSON unless it is a string (the ``show`` template filter)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def coerce(text: str, like: Any) -> Any:
    """Give a typed label the type of the prediction it corrects (``"0"`` -> ``0``)."""
    try:
        if isinstance(like, bool):
            return {"true": True, "false": False}.get(text.strip().lower(), text)
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        pass
    return text


class Review:
    """Request handlers bound to one store and signer."""

    def __init__(self, store: GateStore, signer: LinkSigner, header: str | None) -> None:
        self.store, self.signer, self.header = store, signer, header
        folder = Path(__file__).with_name("templates")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters.update(when=when, show=show, markdown=render_markdown)

    # -- rendering -----------------------------------------------------------------------------
    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        nonce = secrets.token_urlsafe(16)
        context.setdefault("reviewer", None)
        context.setdefault("via_link", False)
        html = self.env.get_template(name).render(
            nonce=nonce, root=request.scope.get("root_path", ""), **context
        )
        csp = CSP.format(style=f"style-src 'nonce-{nonce}'; ")
        return HTMLResponse(html, status, headers={"Content-Security-Policy": csp})

    def message(self, request: Request, status: int, title: str, text: str, **ctx: Any) -> Response:
        return self.page(request, "message.html", status, title=title, text=text, **ctx)

    def error(self, request: Request, exc: GateError, **ctx: Any) -> Response:
        if isinstance(exc, GateNotFoundError):
            return self.message(
                request, 404, "Gate not found", "No such gate in this store.", **ctx
            )
        if isinstance(exc, GateClosedError):
            text = "This gate is already decided or expired. Nothing was recorded."
            return self.message(request, 409, "Gate closed", text, **ctx)
        if isinstance(exc, GateTokenError):
            text = "This link was already used. Each personal link decides once."
            return self.message(request, 403, "Link already used", text, **ctx)
        text = "Your vote was refused: you are not an assignee of this gate, you already voted, "
        text += "or the option is not one of the gate's options. Nothing was recorded."
        return self.message(request, 403, "Vote refused", text, **ctx)

    def identity(self, request: Request) -> str | None:
        if self.header is None:
            return None
        value = request.headers.get(self.header, "").strip()
        return value or None

    def unauthenticated(self, request: Request) -> Response:
        text = "Open your personal link from the notification to review a gate."
        return self.message(request, 401, "Sign-in needed", text)

    # -- store access (sync, run in a thread) --------------------------------------------------
    def view(self, gate_id: str) -> tuple[GateRecord, list[GateItem], list[dict[str, Any]]]:
        return self.store.get(gate_id), self.store.items(gate_id), self.store.history(gate_id)

    def vote(
        self,
        gate_id: str,
        *,
        reviewer: str,
        option: str,
        comment: str | None,
        labels: dict[str, str],
        channel: str,
        nonce: str | None = None,
    ) -> tuple[GateRecord, int]:
        """Check, consume the nonce, store corrections, then record the vote."""
        record = self.store.get(gate_id)
        voted = any(v.reviewer == reviewer for v in record.votes)
        if nonce is not None and voted:
            # The link's reviewer has voted: the link (or another of theirs) was used.
            raise GateTokenError("already used", gate_id=gate_id)
        if not record.is_open:
            raise GateClosedError("the gate is closed", gate_id=gate_id)
        eligible = record.policy.eligible_reviewers(record.escalation_level)
        if option not in record.policy.options or (
            eligible is not None and reviewer not in eligible
        ):
            raise GateVoteRefusedError("vote refused", gate_id=gate_id)
        if nonce is not None:
            # Consumed only after the checks above, so a refused or late link is not burnt.
            self.store.consume_token(nonce, gate_id=gate_id, reviewer=reviewer)
        if voted:
            raise GateVoteRefusedError("already voted", gate_id=gate_id)
        changed = 0
        for item in self.store.items(gate_id):
            if item.item_id not in labels:
                continue
            current = item.label if item.label is not None else item.prediction
            text = labels[item.item_id].strip()
            if text == show(current) or (not text and current is None):
                continue
            label = coerce(text, item.prediction)
            self.store.correct_item(
                gate_id, item.item_id, label=label, reviewer=reviewer, channel=channel
            )
            changed += 1
        decided = self._decide(
            record, reviewer=reviewer, option=option, comment=comment, channel=channel
        )
        logger.info("vote recorded on gate %s via %s (%d corrections)", gate_id, channel, changed)
        return decided, changed

    def _decide(self, record: GateRecord, **kwargs: Any) -> GateRecord:
        # The service records the audit event too; the store alone is the fallback.
        try:
            from guardflow.gates.service import Gate
        except ImportError:
            return self.store.decide(record.id, **kwargs)
        return Gate(record.policy, store=self.store).decide(record.id, **kwargs)

    # -- handlers ------------------------------------------------------------------------------
    def check_link(self, token: str) -> tuple[LinkClaims | None, str | None]:
        """Verify a link token; on failure say whether it is forged or expired."""
        if len(token) > _MAX_TOKEN:
            return None, "forged"
        try:
            return self.signer.verify(token), None
        except (GateTokenError, ValueError):
            pass
        try:  # a valid signature with an old clock means the link only expired
            self.signer.verify(token, now=_EPOCH)
        except (GateTokenError, ValueError):
            return None, "forged"
        return None, "expired"

    def link_problem(self, request: Request, problem: str) -> Response:
        if problem == "expired":
            text = "This link has expired. Ask for a new link or use the review page."
            return self.message(request, 403, "Link expired", text)
        text = "This link is forged or damaged. Open the link from your notification again."
        return self.message(request, 403, "Link not valid", text)

    async def gate_form(
        self, request: Request, gate_id: str, reviewer: str, *, action: str, **ctx: Any
    ) -> Response:
        try:
            record, items, history = await run_in_threadpool(self.view, gate_id)
        except GateError as exc:
            return self.error(request, exc)
        eligible = record.policy.eligible_reviewers(record.escalation_level)
        voted = next((v for v in record.votes if v.reviewer == reviewer), None)
        if ctx.get("via_link") and voted is not None:
            return self.error(request, GateTokenError("already used", gate_id=gate_id))
        if ctx.get("via_link") and not record.is_open:
            return self.error(request, GateClosedError("closed", gate_id=gate_id))
        return self.page(
            request,
            "gate.html",
            gate=record,
            items=items,
            history=history,
            tally=record.tally(),
            reviewer=reviewer,
            voted=voted,
            eligible=eligible is None or reviewer in eligible,
            action=action,
            **ctx,
        )

    async def link_get(self, request: Request) -> Response:
        token = request.path_params["token"]
        claims, problem = self.check_link(token)
        if claims is None:
            return self.link_problem(request, problem or "forged")
        root = request.scope.get("root_path", "")
        return await self.gate_form(
            request,
            claims.gate_id,
            claims.reviewer,
            action=f"{root}/l/{token}",
            csrf=None,
            fixed_option=claims.option,
            via_link=True,
        )

    async def record(
        self,
        request: Request,
        gate_id: str,
        reviewer: str,
        channel: str,
        *,
        fixed_option: str | None = None,
        nonce: str | None = None,
    ) -> Response:
        form = await request.form()
        option = str(form.get("option") or fixed_option or "")
        shown = reviewer if channel == "page" else None
        if fixed_option is not None and option != fixed_option:
            return self.error(request, GateVoteRefusedError("option not in link"), reviewer=shown)
        comment = str(form.get("comment") or "").strip()[:_MAX_COMMENT] or None
        labels = {
            key[len("label__") :]: value
            for key, value in form.multi_items()
            if key.startswith("label__") and isinstance(value, str)
        }
        try:
            record, changed = await run_in_threadpool(
                lambda: self.vote(
                    gate_id,
                    reviewer=reviewer,
                    option=option,
                    comment=comment,
                    labels=labels,
                    channel=channel,
                    nonce=nonce,
                )
            )
        except GateError as exc:
            return self.error(request, exc, reviewer=shown)
        return self.page(
            request,
            "result.html",
            gate=record,
            option=option,
            corrections=changed,
            tally=record.tally(),
            reviewer=shown,
        )

    async def link_post(self, request: Request) -> Response:
        claims, problem = self.check_link(request.path_params["token"])
        if claims is None:
            return self.link_problem(request, problem or "forged")
        return await self.record(
            request,
            claims.gate_id,
            claims.reviewer,
            "link",
            fixed_option=claims.option,
            nonce=claims.nonce,
        )

    async def index(self, request: Request) -> Response:
        reviewer = self.identity(request)
        if reviewer is None:
            return self.unauthenticated(request)
        gates = await run_in_threadpool(
            lambda: self.store.list(status=GateStatus.PENDING, reviewer=reviewer)
        )
        return self.page(request, "list.html", gates=gates, reviewer=reviewer, history=False)

    async def history(self, request: Request) -> Response:
        reviewer = self.identity(request)
        if reviewer is None:
            return self.unauthenticated(request)

        def closed() -> list[GateRecord]:
            gates = self.store.list(status=GateStatus.RESOLVED) + self.store.list(
                status=GateStatus.EXPIRED
            )
            far = datetime.min.replace(tzinfo=timezone.utc)
            return sorted(gates, key=lambda g: g.resolved_at or far, reverse=True)

        gates = await run_in_threadpool(closed)
        return self.page(request, "list.html", gates=gates, reviewer=reviewer, history=True)

    async def gate_get(self, request: Request) -> Response:
        reviewer = self.identity(request)
        if reviewer is None:
            return self.unauthenticated(request)
        gate_id = request.path_params["gate_id"]
        root = request.scope.get("root_path", "")
        return await self.gate_form(
            request,
            gate_id,
            reviewer,
            action=f"{root}/gates/{gate_id}/decide",
            csrf=self.signer.csrf_token(gate_id, reviewer),
            fixed_option=None,
            via_link=False,
        )

    async def gate_post(self, request: Request) -> Response:
        reviewer = self.identity(request)
        if reviewer is None:
            return self.unauthenticated(request)
        gate_id = request.path_params["gate_id"]
        form = await request.form()
        try:
            self.signer.check_csrf(str(form.get("csrf") or ""), gate_id, reviewer)
        except GateTokenError:
            text = "The form was stale or did not come from this page. Reload the gate and retry."
            return self.message(request, 403, "Form expired", text, reviewer=reviewer)
        return await self.record(request, gate_id, reviewer, "page")
