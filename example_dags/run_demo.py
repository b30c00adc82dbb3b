"""Run the guardflow reference workflow on Airflow and on Prefect, against local servers.

``make demo`` runs this file in the Airflow environment. It:

1. trains a tiny scikit-learn model and serves it with MLflow's real scoring server on 127.0.0.1;
2. starts a real OpenBao dev server (Vault's API), stores the model server's bearer token at
   ``secret/guardflow/inference`` (key ``token``) and the PII step's hash key at
   ``secret/guardflow/pii`` (key ``hash_key``), and creates a Vault token that may only read
   those two paths;
3. runs ``example_dags/airflow/guardflow_reference.py`` with ``dag.test()`` on a SQLite Airflow
   home under ``.demo/airflow``, Vault reached through ``AIRFLOW_CONN_VAULT_DEFAULT``
   (apache-airflow-providers-hashicorp's connection format);
4. runs ``example_dags/prefect/guardflow_reference.py`` with the Prefect environment's
   interpreter against an ephemeral Prefect server under ``.demo/prefect``, Vault reached
   through ``VAULT_ADDR`` / ``VAULT_TOKEN``;
5. while each workflow waits at its approval gate, shows where a human would decide (the review
   page started with ``guardflow gates serve`` on 127.0.0.1:8765, and the command that prints a
   reviewer's personal link), then decides through the CLI (``guardflow gates approve``) as
   reviewer ``demo-reviewer``; the gate store is ``.demo/gates.db`` and the link-signing key is
   read from Vault (``secret/guardflow/gates``, key ``signing_key``);
6. runs both again on a drifted sample (``--simulate-drift``), which takes the drift branch:
   an alert naming the drifted columns, and nothing scored (``--no-drift-run`` skips this);
7. prints what happened (PII masked, checks, drift branch, review decision, results), then stops
   the servers.

Everything it writes stays under ``.demo/`` (delete it to start over). No token is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from guardflow.testing.model_servers import MLflowModelServer
from guardflow.testing.vault_server import VaultServer

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_DAG = ROOT / "example_dags" / "airflow" / "guardflow_reference.py"
PREFECT_FLOW = ROOT / "example_dags" / "prefect" / "guardflow_reference.py"
# Where the example workflows read the model server's token (KV v2 mount "secret").
TOKEN_PATH = "guardflow/inference"
PII_KEY_PATH = "guardflow/pii"
GATE_KEY_PATH = "guardflow/gates"
READ_POLICY = "\n".join(
    f'path "secret/data/{path}" {{ capabilities = ["read"] }}'
    for path in (TOKEN_PATH, PII_KEY_PATH, GATE_KEY_PATH)
)
REVIEWER = "demo-reviewer"
REVIEW_PORT = 8765
# Lines of the workflows' output that say what happened, gathered for the final summary.
OUTCOME_MARKERS = (
    "PII report:",
    "suite 'sample'",
    "dataset: ",
    "Drift branch taken:",
    "ALERT:",
    "Review gate ",
    "Quarantined:",
    "Results:",
)
# Airflow's log lines end with the logger and source location: not needed in the summary.
_LOG_CONTEXT = re.compile(r"\s+\[[\w.]+\](\s+\w+=\S+)*\s*$")


def _gates_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``guardflow gates ...`` (the CLI a reviewer or an operator would use)."""
    return subprocess.run(
        [sys.executable, "-m", "guardflow", "gates", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


class _DemoReviewer(threading.Thread):
    """Stands in for the human: waits for a pending gate, shows where to click, decides by CLI."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.env = env
        self.lines: list[str] = []
        self._done = threading.Event()

    def stop(self) -> None:
        """Stop watching (the workflow ended)."""
        self._done.set()

    def run(self) -> None:
        """Approve each gate that shows up pending, once."""
        decided: set[str] = set()
        while not self._done.wait(1.0):
            listed = _gates_cli(["list", "--status", "pending", "--format", "json"], self.env)
            if listed.returncode != 0:
                continue
            for gate in json.loads(listed.stdout or "[]"):
                if gate["id"] in decided:
                    continue
                decided.add(gate["id"])
                self._decide(gate)

    def _decide(self, gate: dict[str, Any]) -> None:
        say = [
            f"Review gate {gate['id']} is waiting: {gate['items']} low-confidence items "
            f"for the reviewers ({gate['pipeline']} / {gate['task_id']})",
            "    a reviewer would click the personal link in their notification; to get one:",
            f"        guardflow gates link {gate['id']} --reviewer {REVIEWER}",
            f"    and decide on the review page at http://127.0.0.1:{REVIEW_PORT}, or with:",
            f"        guardflow gates approve {gate['id']} --reviewer {REVIEWER}",
            "    the demo decides now, through the CLI:",
        ]
        approved = _gates_cli(
            [
                "approve",
                gate["id"],
                "--reviewer",
                REVIEWER,
                "--comment",
                "demo: approved automatically by make demo",
            ],
            self.env,
        )
        say.append(f"    $ guardflow gates approve {gate['id']} --reviewer {REVIEWER}")
        say += [f"    {line}" for line in approved.stdout.splitlines() if line.strip()]
        if approved.returncode != 0:
            say.append(f"    (exit {approved.returncode}) {approved.stderr.strip()}")
        print("\n".join(say), flush=True)
        self.lines.append(f"Review gate {gate['id']}: approved by {REVIEWER} through the CLI")


def _run(step: str, cmd: list[str], env: dict[str, str]) -> list[str]:
    """Run one step, echoing its output; return the lines that say what happened.

    A :class:`_DemoReviewer` watches the gate store meanwhile and approves the workflow's gate.
    """
    print(f"\n==> {step}", flush=True)
    reviewer = _DemoReviewer(env)
    reviewer.start()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    outcome: list[str] = []
    try:
        outcome += _echo(proc)
    finally:
        reviewer.stop()
        reviewer.join(timeout=10)
    if proc.wait() != 0:
        sys.exit(f"demo step failed: {step} (exit {proc.returncode})")
    return reviewer.lines + outcome


def _echo(proc: subprocess.Popen[str]) -> list[str]:
    """Echo a step's output; return the lines that say what happened."""
    assert proc.stdout is not None
    outcome: list[str] = []
    for line in proc.stdout:
        sys.stdout.write(line)
        for marker in OUTCOME_MARKERS:
            if marker in line:
                outcome.append(_LOG_CONTEXT.sub("", line[line.index(marker) :].strip()))
                break
    return outcome


def _start_vault(demo: Path) -> tuple[VaultServer, str]:
    """Start OpenBao, store the inference token, return the server and a read-only token."""
    print("==> starting the local OpenBao (Vault API) dev server", flush=True)
    vault = VaultServer(workdir=demo / "openbao")
    vault.start()
    # The demo model server accepts any token; a real one would check this bearer token.
    vault.request(
        "POST",
        f"secret/data/{TOKEN_PATH}",
        json={"data": {"token": f"demo-{secrets.token_urlsafe(18)}"}},
    )
    # The key of the PII step's keyed hash: whoever holds it can test guesses against the hashes.
    vault.request(
        "POST",
        f"secret/data/{PII_KEY_PATH}",
        json={"data": {"hash_key": secrets.token_urlsafe(32)}},
    )
    # The key that signs reviewers' decision links (whoever holds it can forge them).
    vault.request(
        "POST",
        f"secret/data/{GATE_KEY_PATH}",
        json={"data": {"signing_key": secrets.token_urlsafe(48)}},
    )
    vault.write_policy("guardflow-inference-read", READ_POLICY)
    reader = vault.create_token(["guardflow-inference-read"], ttl="2h")
    print(
        f"    OpenBao ready at {vault.url}; inference token stored at secret/{TOKEN_PATH}, "
        f"PII hash key at secret/{PII_KEY_PATH}, link-signing key at secret/{GATE_KEY_PATH}"
    )
    return vault, reader


def _airflow_env(demo: Path, url: str, vault_url: str, vault_token: str) -> dict[str, str]:
    host_port = url.split("://", 1)[1]
    host, port = host_port.split(":")
    conn = {
        "conn_type": "guardflow_inference",
        "host": host,
        "port": int(port),
        "schema": "http",
        "extra": {"protocol": "mlflow", "batch_size": 50, "concurrency": 2},
    }
    vault_host, vault_port = vault_url.split("://", 1)[1].split(":")
    vault_conn = {
        "conn_type": "vault",  # apache-airflow-providers-hashicorp's format, read as is
        "host": vault_host,
        "port": int(vault_port),
        "password": vault_token,
        "extra": {"auth_type": "token", "kv_engine_version": 2},
    }
    return os.environ | {
        "AIRFLOW_HOME": str(demo / "airflow" / "home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_GUARDFLOW_INFERENCE_DEFAULT": json.dumps(conn),
        "AIRFLOW_CONN_VAULT_DEFAULT": json.dumps(vault_conn),
        "GUARDFLOW_DEMO_DIR": str(demo),
        "GUARDFLOW_AUDIT_PATH": str(demo / "audit.jsonl"),
        # The gates CLI (the demo reviewer, `guardflow gates link`) reads Vault from these.
        "VAULT_ADDR": vault_url,
        "VAULT_TOKEN": vault_token,
        "GUARDFLOW_GATES_DB": _gates_db(demo),
    }


def _gates_db(demo: Path) -> str:
    return f"sqlite:///{demo / 'gates.db'}"


def _start_review_page(demo: Path, vault_url: str, vault_token: str) -> subprocess.Popen[bytes]:
    """Start ``guardflow gates serve``: the review page the notification links point at."""
    print(f"==> starting the review page on http://127.0.0.1:{REVIEW_PORT}", flush=True)
    env = os.environ | {
        "VAULT_ADDR": vault_url,
        "VAULT_TOKEN": vault_token,
        "GUARDFLOW_GATES_DB": _gates_db(demo),
    }
    log = (demo / "review-page.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "guardflow",
            "gates",
            "serve",
            "--port",
            str(REVIEW_PORT),
            "--signing-key-ref",
            f"vault://secret/{GATE_KEY_PATH}#signing_key",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _prefect_env(demo: Path, url: str, vault_url: str, vault_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return env | {
        "PREFECT_HOME": str(demo / "prefect" / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GUARDFLOW_ENDPOINT_URL": url,
        "VAULT_ADDR": vault_url,
        "VAULT_TOKEN": vault_token,
        "GUARDFLOW_DEMO_DIR": str(demo),
        "GUARDFLOW_AUDIT_PATH": str(demo / "audit.jsonl"),
        "GUARDFLOW_GATES_DB": _gates_db(demo),
    }


def _print_results(demo: Path, outcomes: dict[str, list[str]]) -> None:
    print("\n==> what happened")
    for run, lines in outcomes.items():
        print(f"    {run}:")
        for line in lines:
            print(f"        {line}")
    print("\n==> results")
    for path in sorted(demo.rglob("*")):
        skipped = {"model-server", "home", "openbao", "audit.jsonl", "review_items.jsonl"}
        wanted = {".parquet", ".jsonl", ".csv"}
        parts = set(path.relative_to(demo).parts)
        if path.is_file() and path.suffix in wanted and not skipped & parts:
            print(f"    {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"    audit trail: {demo / 'audit.jsonl'}")
    print(f"    gate store: {demo / 'gates.db'} (guardflow gates list --status all)")


def main() -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefect-python", help="interpreter of the Prefect environment")
    parser.add_argument("--demo-dir", default=str(ROOT / ".demo"), help="where outputs go")
    parser.add_argument("--skip-airflow", action="store_true")
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument(
        "--no-drift-run", action="store_true", help="skip the second run on a drifted sample"
    )
    args = parser.parse_args()
    if not args.skip_prefect and not args.prefect_python:
        sys.exit("--prefect-python is required unless --skip-prefect is given")
    demo = Path(args.demo_dir).resolve()
    for home in ("airflow/home", "prefect/home"):
        # Prefect's SQLite database cannot be created in a folder that does not exist yet.
        (demo / home).mkdir(parents=True, exist_ok=True)
    variants = [("sample", [])] + ([] if args.no_drift_run else [("drifted", ["--simulate-drift"])])
    outcomes: dict[str, list[str]] = {}

    print("==> starting the local MLflow model server (10-20 s)", flush=True)
    server = MLflowModelServer(workdir=demo / "model-server")
    server.start()
    vault: VaultServer | None = None
    review_page: subprocess.Popen[bytes] | None = None
    try:
        print(f"    model server ready at {server.url}")
        vault, vault_token = _start_vault(demo)
        review_page = _start_review_page(demo, vault.url, vault_token)
        if not args.skip_airflow:
            env = _airflow_env(demo, server.url, vault.url, vault_token)
            _run(
                "airflow db migrate (SQLite)",
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env,
            )
            for name, flags in variants:
                outcomes[f"Airflow, {name}"] = _run(
                    f"Airflow: guardflow_reference with dag.test() on the {name} data",
                    [sys.executable, str(AIRFLOW_DAG), *flags],
                    env,
                )
        if not args.skip_prefect:
            env = _prefect_env(demo, server.url, vault.url, vault_token)
            for name, flags in variants:
                outcomes[f"Prefect, {name}"] = _run(
                    f"Prefect: guardflow_reference flow on the {name} data",
                    [args.prefect_python, str(PREFECT_FLOW), *flags],
                    env,
                )
    finally:
        if review_page is not None:
            review_page.terminate()
            review_page.wait(timeout=15)
        if vault is not None:
            vault.stop()
        server.stop()

    _print_results(demo, outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
