"""``guardflow infer``: score a Parquet, CSV or JSONL file on a model server."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pydantic import SecretStr, ValidationError

from guardflow.errors import ConfigurationError, InferenceFailedRowsError
from guardflow.identity import RunIdentity

__all__ = ["register", "run"]

_PROTOCOLS = ["mlflow", "v2", "bentoml", "openai", "openai-embeddings", "json"]


def register(sub: Any) -> None:
    """Add the ``infer`` subcommand to the CLI's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "infer",
        help="score a file on a model server",
        description=(
            "Score INPUT (Parquet, CSV or JSONL) on a model server and write OUTPUT (Parquet or "
            "JSONL) with the input columns plus a prediction column. Rows that still fail after "
            "retries go to a dead-letter JSONL file beside OUTPUT. The bearer token, if any, is "
            "read from the environment variable named by --token-env, never from the command line."
        ),
    )
    p.add_argument("input", help="input file or URI (.parquet, .csv, .jsonl)")
    p.add_argument("output", help="output file or URI (.parquet or .jsonl)")
    p.add_argument("--endpoint", required=True, help="model server base URL")
    p.add_argument("--protocol", choices=_PROTOCOLS, default="mlflow", help="wire protocol")
    p.add_argument("--model", help="model name (v2 path, OpenAI model)")
    p.add_argument("--model-version", help="model version (v2)")
    p.add_argument("--batch-size", type=int, default=100, help="rows per request (100)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (4)")
    p.add_argument("--rps", type=float, help="cap on requests per second")
    p.add_argument("--key-column", help="column identifying each row")
    p.add_argument("--columns", help="comma-separated input columns sent to the model")
    p.add_argument("--dead-letter", help="dead-letter output path (default beside OUTPUT)")
    p.add_argument(
        "--max-failed-fraction",
        type=float,
        default=0.0,
        help="share of rows allowed to fail before the command fails (0)",
    )
    p.add_argument(
        "--token-env",
        default="GUARDFLOW_INFERENCE_TOKEN",
        help="environment variable holding the bearer token (GUARDFLOW_INFERENCE_TOKEN)",
    )
    p.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="log progress"
    )
    p.add_argument("--no-probe", action="store_true", help="skip the readiness probe")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def _config(args: argparse.Namespace) -> Any:
    from guardflow.inference import InferenceConfig

    token = os.environ.get(args.token_env)
    try:
        return InferenceConfig.model_validate(
            {
                "endpoint": {
                    "url": args.endpoint,
                    "protocol": args.protocol,
                    "model_name": args.model,
                    "model_version": args.model_version,
                    "token": SecretStr(token) if token else None,
                },
                "batching": {
                    "batch_size": args.batch_size,
                    "concurrency": args.concurrency,
                    "requests_per_second": args.rps,
                },
                "failure": {"max_failed_fraction": args.max_failed_fraction},
                "key_column": args.key_column,
                "input_columns": args.columns.split(",") if args.columns else None,
                "probe": not args.no_probe,
            }
        )
    except ValidationError as exc:
        raise ConfigurationError.from_validation(exc, what="arguments") from None


def run(args: argparse.Namespace) -> int:
    """Execute ``guardflow infer``; print the JSON summary on stdout."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from guardflow.inference import run_inference

    config = _config(args)
    identity = RunIdentity(orchestrator="cli", pipeline="guardflow-cli", task_id="infer")
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=None,
        disable=args.no_progress or not sys.stderr.isatty(),
        transient=True,
    )
    with progress:
        bar = progress.add_task("scoring rows", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        try:
            summary = run_inference(
                args.input,
                args.output,
                config,
                identity=identity,
                dead_letter=args.dead_letter,
                progress=on_progress,
            )
        except InferenceFailedRowsError as exc:
            print(json.dumps(exc.summary, indent=2))
            raise
    print(json.dumps(summary.to_dict(), indent=2))
    return 0
