"""The ``guardflow`` command line.

Subcommands live in their own modules and register themselves on the parser:

- ``guardflow infer INPUT OUTPUT --endpoint URL --protocol ...``: score a file on a model server.
- ``guardflow secrets get PATH [--key KEY] [--reveal]``: read a secret from Vault or OpenBao.
- ``guardflow drift REFERENCE CURRENT [--engine native|evidently] [--format json|text]``: check
  data drift.
- ``guardflow quality DATA --suite SUITE [--format json|text]``: run an expectation suite.
- ``guardflow pii detect|mask|scan ...``: detect, mask or scan personal data in files.
- ``guardflow gates list|show|approve|reject|link|serve|export``: review and decide approval gates.
- ``guardflow version``: print the installed version.

Exit codes: 0 success, 1 the step failed (e.g. too many rows failed), 2 bad usage or
configuration, 3 the model server is not ready.
``secrets``: 1 secret, key or engine not found, 3 Vault unreachable or sealed, 4 Vault auth
failed or permission denied.
``drift`` / ``quality``: 0 no drift / suite passed, 1 drift detected / suite failed, 2 bad
input or configuration (any error).
``pii``: 0 ok, 1 PII found where the policy does not allow it (``scan``), 2 bad input or
configuration; Vault failures 3 and 4 as for ``secrets``.
``gates``: 0 ok, 1 vote refused, gate closed or not found, 2 bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from guardflow import __version__
from guardflow.cli import drift as drift_cli
from guardflow.cli import gates as gates_cli
from guardflow.cli import infer
from guardflow.cli import pii as pii_cli
from guardflow.cli import quality as quality_cli
from guardflow.cli import secrets as secrets_cli
from guardflow.errors import (
    ConfigurationError,
    EndpointNotReadyError,
    GuardflowError,
    VaultAuthError,
    VaultPermissionError,
    VaultSealedError,
    VaultUnreachableError,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``guardflow`` command."""
    parser = argparse.ArgumentParser(
        prog="guardflow",
        description="Guardrailed AI steps for data pipelines (Airflow and Prefect).",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    version = sub.add_parser("version", help="print the installed guardflow version")
    version.set_defaults(handler=lambda _args: print(__version__) or 0)
    infer.register(sub)
    drift_cli.register(sub)
    quality_cli.register(sub)
    secrets_cli.register(sub)
    pii_cli.register(sub)
    gates_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code (see the module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except (VaultAuthError, VaultPermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except (EndpointNotReadyError, VaultUnreachableError, VaultSealedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GuardflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
