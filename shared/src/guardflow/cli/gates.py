"""``guardflow gates``: list, show, decide, link, serve and export approval gates.

Every action works on the same store as the pipelines (``--store URL``, default
``$GUARDFLOW_GATES_DB``, else a SQLite file under ``~/.guardflow``). Decisions made here are
recorded with channel ``cli`` and the reviewer ``--reviewer`` (default ``$GUARDFLOW_REVIEWER``,
else the OS user). Exit codes: 0 done, 1 refused, closed or not found, 2 bad configuration.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from guardflow.errors import ConfigurationError, GateVoteRefusedError

if TYPE_CHECKING:
    from guardflow.gates.models import GateRecord
    from guardflow.gates.store import GateStore

__all__ = ["register", "run"]


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="SQLAlchemy URL of the gate store (default $GUARDFLOW_GATES_DB, else ~/.guardflow)",
    )


def _decide_options(parser: argparse.ArgumentParser, *, option_help: str) -> None:
    parser.add_argument("gate_id", metavar="ID", help="the gate id")
    parser.add_argument(
        "--reviewer", help="who decides (default $GUARDFLOW_REVIEWER, else the OS user)"
    )
    parser.add_argument("--comment", help="a comment stored with the vote (never logged)")
    parser.add_argument("--option", help=option_help)


def register(sub: Any) -> None:
    """Add the ``gates`` subcommand and its actions to the CLI's subparsers."""
    gates: argparse.ArgumentParser = sub.add_parser(
        "gates",
        help="review and decide human approval gates",
        description="List, show and decide approval gates, print personal links, run the "
        "review page, export decisions.",
    )
    actions = gates.add_subparsers(dest="gates_command", required=True, metavar="ACTION")

    p = actions.add_parser("list", help="list gates (pending by default)")
    p.add_argument("--status", choices=["pending", "resolved", "expired", "all"], default="pending")
    p.add_argument("--pipeline", help="only gates of this DAG or flow")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _store_option(p)

    p = actions.add_parser("show", help="show a gate: context, items, votes, history")
    p.add_argument("gate_id", metavar="ID", help="the gate id")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _store_option(p)

    p = actions.add_parser("approve", help="vote for an approving option (default the first)")
    _decide_options(p, option_help="a named non-reject option (for branch gates)")
    _store_option(p)
    p = actions.add_parser("reject", help="vote for a reject option (default the first)")
    _decide_options(p, option_help="a named reject option")
    _store_option(p)

    p = actions.add_parser("link", help="print a personal signed decision link")
    p.add_argument("gate_id", metavar="ID", help="the gate id")
    p.add_argument("--reviewer", required=True, help="whom the link is for")
    p.add_argument("--option", help="preselect this option on the confirmation page")
    p.add_argument("--ttl", type=float, help="seconds the link is valid (default: policy)")
    p.add_argument("--base-url", help="public URL of the review page (default: policy)")
    p.add_argument("--signing-key-ref", help="env:NAME or vault://MOUNT/PATH#KEY (default: policy)")
    _store_option(p)

    p = actions.add_parser("serve", help="run the review page")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (8765)")
    p.add_argument(
        "--identity-header", help="proxy header naming the reviewer, e.g. X-Forwarded-User"
    )
    p.add_argument("--signing-key-ref", help="default env:GUARDFLOW_GATES_SIGNING_KEY")
    p.add_argument("--base-url", help="public URL of the page")
    _store_option(p)

    p = actions.add_parser("export", help="export decisions and corrections as a dataset")
    p.add_argument("output", metavar="OUTPUT", help="file to write (.parquet or .jsonl)")
    p.add_argument("--pipeline", help="only gates of this DAG or flow")
    p.add_argument("--gate", action="append", dest="gate_ids", metavar="ID", help="only this gate")
    p.add_argument("--format", choices=["parquet", "jsonl"], help="default: from the suffix")
    p.add_argument("--mlflow-run-id", help="also log the file to this MLflow run")
    _store_option(p)
    gates.set_defaults(handler=run)


def _store(args: argparse.Namespace) -> GateStore:
    from guardflow.gates.store import GateStore

    return GateStore(args.store)


def _summary(record: GateRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "subject": record.subject,
        "status": record.status.value,
        "outcome": record.outcome,
        "pipeline": record.pipeline,
        "run_id": record.run_id,
        "task_id": record.task_id,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "votes": record.tally(),
        "quorum": {o: record.policy.quorum(o) for o in record.policy.options},
        "items": record.item_count,
    }


def _list(args: argparse.Namespace, store: GateStore) -> int:
    from guardflow.gates.models import GateStatus

    status = None if args.status == "all" else GateStatus(args.status)
    gates = store.list(status=status, pipeline=args.pipeline)
    if args.format == "json":
        print(json.dumps([_summary(g) for g in gates], indent=2))
        return 0
    if not gates:
        print(f"no {'' if status is None else status.value + ' '}gates")
    for g in gates:
        votes = ", ".join(f"{o} {n}/{g.policy.quorum(o)}" for o, n in g.tally().items()) or "-"
        print(f"{g.id}  {g.status.value:<8}  {g.pipeline}/{g.run_id}/{g.task_id}  votes: {votes}")
        print(f"    {g.subject}")
    return 0


def _show(args: argparse.Namespace, store: GateStore) -> int:
    record = store.get(args.gate_id)
    items, history = store.items(record.id), store.history(record.id)
    data = {
        **_summary(record),
        "body": record.body,
        "context": record.context,
        "items_passed": record.passed_count,
        "corrections": sum(1 for i in items if i.corrected_by),
        "resolution_channel": record.resolution_channel,
        "votes_detail": [v.model_dump(mode="json") for v in record.votes],
        "history": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in e.items()}
            for e in history
        ],
    }
    if args.format == "json":
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"{record.subject}\n  id: {record.id}\n  status: {record.status.value}")
    if record.outcome:
        print(f"  outcome: {record.outcome} (via {record.resolution_channel})")
    print(f"  run: {record.pipeline} / {record.run_id} / {record.task_id}")
    print(f"  expires: {data['expires_at'] or 'never'}")
    print(f"  needed: {', '.join(f'{o} {n}' for o, n in data['quorum'].items())}")
    if record.body:
        print("\n" + record.body)
    if record.context:
        print("\ncontext:")
        for key, value in record.context.items():
            print(f"  {key}: {json.dumps(value, default=str)}")
    print(
        f"\nitems: {record.item_count} to review, {record.passed_count} passed, "
        f"{data['corrections']} corrected"
    )
    print("\nvotes:" if record.votes else "\nvotes: none")
    for v in record.votes:
        comment = f" — {v.comment}" if v.comment else ""
        print(f"  {v.decided_at.isoformat()}  {v.reviewer}: {v.option} via {v.channel}{comment}")
    print("\nhistory:")
    for e in data["history"]:
        who = f" {e['actor']}" if e.get("actor") else ""
        via = f" via {e['channel']}" if e.get("channel") else ""
        print(f"  {e['at']}  {e['kind']}{who}{via}")
    return 0


def _decide(args: argparse.Namespace, store: GateStore, *, approve: bool) -> int:
    record = store.get(args.gate_id)
    policy = record.policy
    allowed = [o for o in policy.options if (o in policy.reject_options) != approve]
    option = args.option or (allowed[0] if allowed else None)
    if option is None or option not in allowed:
        kind = "approving" if approve else "reject"
        raise GateVoteRefusedError(
            f"gate {record.id!r} has no {kind} option "
            f"{'named ' + repr(args.option) if args.option else ''}; its {kind} options: "
            f"{', '.join(allowed) or 'none'}",
            gate_id=record.id,
        )
    reviewer = args.reviewer or os.environ.get("GUARDFLOW_REVIEWER") or getpass.getuser()
    try:
        from guardflow.gates.service import Gate
    except ImportError:  # pragma: no cover - the service ships with the store
        decided = store.decide(
            record.id, reviewer=reviewer, option=option, channel="cli", comment=args.comment
        )
    else:
        decided = Gate(policy, store=store).decide(
            record.id, reviewer=reviewer, option=option, channel="cli", comment=args.comment
        )
    state = decided.status.value + (f": {decided.outcome}" if decided.outcome else "")
    print(f"recorded {reviewer}'s vote '{option}' on gate {decided.id}; the gate is {state}")
    return 0


def _link(args: argparse.Namespace, store: GateStore) -> int:
    from guardflow.errors import GateClosedError
    from guardflow.gates.tokens import LinkSigner, link_url

    record = store.get(args.gate_id)
    if not record.is_open:
        raise GateClosedError(
            f"gate {record.id!r} is {record.status.value}; no link is needed", gate_id=record.id
        )
    policy = record.policy
    if args.option is not None and args.option not in policy.options:
        raise ConfigurationError(f"--option must be one of {', '.join(policy.options)}")
    eligible = policy.eligible_reviewers(record.escalation_level)
    if eligible is not None and args.reviewer not in eligible:
        raise GateVoteRefusedError(
            f"{args.reviewer!r} is not an assignee of gate {record.id!r}", gate_id=record.id
        )
    signer = LinkSigner.from_ref(args.signing_key_ref or policy.signing_key_ref)
    ttl = args.ttl if args.ttl is not None else policy.link_ttl_s
    token = signer.issue(record.id, args.reviewer, ttl_s=ttl, option=args.option)
    print(link_url((args.base_url or policy.base_url).rstrip("/"), token))
    return 0


def _export(args: argparse.Namespace, store: GateStore) -> int:
    from guardflow.gates.export import export_decisions

    rows = export_decisions(
        store,
        args.output,
        format=args.format,
        gate_ids=args.gate_ids,
        pipeline=args.pipeline,
        mlflow_run_id=args.mlflow_run_id,
    )
    print(f"wrote {rows} rows to {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute one ``guardflow gates`` action.

    Args:
        args: The parsed arguments of ``guardflow gates ACTION``.

    Returns:
        0; refusals raise :class:`~guardflow.errors.GateError` subclasses (exit 1) and bad
        configuration :class:`~guardflow.errors.ConfigurationError` (exit 2).
    """
    if args.gates_command == "serve":
        try:
            from guardflow.gates.server import serve
        except ImportError as exc:
            from guardflow.errors import MissingExtraError

            raise MissingExtraError(module=exc.name or "starlette", extra="gates") from None
        serve(
            store_url=args.store,
            host=args.host,
            port=args.port,
            identity_header=args.identity_header,
            signing_key_ref=args.signing_key_ref,
            base_url=args.base_url,
        )
        return 0
    store = _store(args)
    try:
        if args.gates_command == "list":
            return _list(args, store)
        if args.gates_command == "show":
            return _show(args, store)
        if args.gates_command in ("approve", "reject"):
            return _decide(args, store, approve=args.gates_command == "approve")
        if args.gates_command == "link":
            return _link(args, store)
        return _export(args, store)
    finally:
        store.dispose()
        sys.stdout.flush()
