"""``guardflow drift``: compare current data with a reference, column by column.

Exit codes: 0 no dataset drift, 1 dataset drift, 2 bad input or configuration (including a
missing extra, unreadable files and MLflow logging failures).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from guardflow.errors import ConfigurationError, GuardflowError
from guardflow.identity import RunIdentity

__all__ = ["add_mlflow_options", "register", "run"]


def register(sub: Any) -> None:
    """Add the ``drift`` subcommand to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "drift",
        help="check data drift between a reference and current data",
        description=(
            "Compare CURRENT with REFERENCE column by column using Evidently's default tests "
            "(or the ones --config names) and print the verdict. REFERENCE and CURRENT are "
            "Parquet, CSV or JSONL files or URIs; REFERENCE may also be a saved reference "
            "profile. Exit code 0: no drift, 1: drift, 2: bad input or configuration."
        ),
    )
    p.add_argument("reference", help="reference data (.parquet, .csv, .jsonl) or saved profile")
    p.add_argument("current", help="current data (.parquet, .csv, .jsonl)")
    p.add_argument(
        "--engine",
        choices=["native", "evidently"],
        default="native",
        help="native statistics (default) or Evidently itself (needs the evidently extra)",
    )
    p.add_argument(
        "--format", choices=["json", "text"], default="text", help="what to print (text)"
    )
    p.add_argument("--config", help="drift config YAML (columns, methods, thresholds, share)")
    p.add_argument("--columns", help="comma-separated columns to compare (overrides --config)")
    p.add_argument("--html", help="write Evidently's HTML report here (needs --engine evidently)")
    p.add_argument("--output", help="write the full report as JSON here")
    add_mlflow_options(p)
    p.set_defaults(handler=run)


def add_mlflow_options(p: argparse.ArgumentParser) -> None:
    """Add ``--mlflow-uri`` and ``--mlflow-experiment`` (shared with ``guardflow quality``)."""
    p.add_argument(
        "--mlflow-uri",
        help="log the result to this MLflow tracking URI (needs the mlflow extra)",
    )
    p.add_argument(
        "--mlflow-experiment",
        help="MLflow experiment to log to (implies logging; default $MLFLOW_EXPERIMENT_NAME)",
    )


def run(args: argparse.Namespace) -> int:
    """Execute ``guardflow drift``; print the report; return 0 (no drift) or 1 (drift)."""
    try:
        report = _check(args)
        if args.output:
            from guardflow.tables import write_bytes

            write_bytes(report.to_json(indent=2).encode("utf-8"), args.output)
        if args.format == "json":
            print(json.dumps(report.cli_dict(), indent=2))
        else:
            print(report.to_text())
        if args.mlflow_uri or args.mlflow_experiment:
            from guardflow.tracking import log_drift_report

            run_id = log_drift_report(
                report, tracking_uri=args.mlflow_uri, experiment=args.mlflow_experiment
            )
            print(f"logged to MLflow run {run_id}", file=sys.stderr)
    except GuardflowError as exc:
        # Exit code 1 means "drift"; every failure to check gets 2 so scripts never mistake one.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if report.dataset_drift else 0


def _check(args: argparse.Namespace) -> Any:
    from guardflow.drift import DriftConfig, check_drift

    config = DriftConfig.from_yaml(args.config) if args.config else DriftConfig()
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not columns:
            raise ConfigurationError("--columns names no column")
        config = DriftConfig.model_validate({**config.model_dump(), "columns": columns})
    return check_drift(
        args.reference,
        args.current,
        config=config,
        engine=args.engine,
        html_path=args.html,
        identity=RunIdentity(orchestrator="cli", pipeline="guardflow-cli", task_id="drift"),
    )
