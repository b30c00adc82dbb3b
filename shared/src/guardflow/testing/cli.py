"""Run the ``guardflow`` command line in a fresh interpreter, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["run_cli"]


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``guardflow ARGS`` in a child interpreter and return its exit code and output.

    ``VAULT_*`` variables of the calling process are dropped, so the command sees only the
    Vault settings ``env`` gives it, and the audit trail goes to ``cwd / "audit.jsonl"``.
    Output is decoded as UTF-8 with undecodable bytes shown as escapes rather than raised.

    Args:
        args: The command's arguments (``"pii", "mask", ...``).
        cwd: Working directory of the command.
        env: Extra environment variables, applied last.
        stdin: Bytes fed to the command's standard input.
        timeout: Seconds before the command is killed (``subprocess.TimeoutExpired``).

    Returns:
        The finished process, with ``stdout`` and ``stderr`` as text.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    done = subprocess.run(
        [sys.executable, "-m", "guardflow", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={**base, "GUARDFLOW_AUDIT_PATH": str(Path(cwd) / "audit.jsonl"), **(env or {})},
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "backslashreplace"),
        done.stderr.decode("utf-8", "backslashreplace"),
    )
