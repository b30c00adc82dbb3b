"""``guardflow quality``: validate a file against a Great Expectations suite.

Exit codes: 0 the suite passed, 1 it failed, 2 bad input or configuration (including an invalid
suite, a missing extra, unreadable files and MLflow logging failures).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from guardflow.cli.drift import add_mlflow_options
from guardflow.errors import GuardflowError
from guardflow.identity import RunIdentity

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``quality`` subcommand to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "quality",
        help="validate data against a Great Expectations suite",
        description=(
            "Run the expectation suite SUITE (YAML or JSON) on DATA (a Parquet, CSV or JSONL "
            "file or URI) and print a summary: counts and failed expectations, never the failing "
            "values. Exit code 0: the suite passed, 1: it failed, 2: bad input or configuration."
        ),
    )
    p.add_argument("data", help="data to validate (.parquet, .csv, .jsonl)")
    p.add_argument("--suite", required=True, help="expectation suite file (.yaml, .yml, .json)")
    p.add_argument(
        "--format", choices=["json", "text"], default="text", help="what to print (text)"
    )
    p.add_argument("--output", help="write the summary as JSON here")
    add_mlflow_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``guardflow quality``; print the summary; return 0 (passed) or 1 (failed)."""
    from guardflow.quality import validate_data

    try:
        summary = validate_data(
            args.data,
            args.suite,
            identity=RunIdentity(orchestrator="cli", pipeline="guardflow-cli", task_id="quality"),
        )
        if args.output:
            from guardflow.tables import write_bytes

            write_bytes(summary.to_json(indent=2).encode("utf-8"), args.output)
        print(
            json.dumps(summary.to_dict(), indent=2) if args.format == "json" else summary.to_text()
        )
        if args.mlflow_uri or args.mlflow_experiment:
            from guardflow.tracking import log_quality_summary

            run_id = log_quality_summary(
                summary, tracking_uri=args.mlflow_uri, experiment=args.mlflow_experiment
            )
            print(f"logged to MLflow run {run_id}", file=sys.stderr)
    except GuardflowError as exc:
        # Exit code 1 means "the suite failed"; every failure to validate gets 2.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if summary.success else 1
