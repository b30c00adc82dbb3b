"""Run the guardflow reference workflow on Airflow and on Prefect, against a local model server.

``make demo`` runs this file in the Airflow environment. It:

1. trains a tiny scikit-learn model and serves it with MLflow's real scoring server on 127.0.0.1;
2. runs ``example_dags/airflow/guardflow_reference.py`` with ``dag.test()`` on a SQLite
   Airflow home under ``.demo/airflow``;
3. runs ``example_dags/prefect/guardflow_reference.py`` with the Prefect environment's
   interpreter against an ephemeral Prefect server under ``.demo/prefect``;
4. prints where the results went, then stops the model server.

Everything it writes stays under ``.demo/`` (delete it to start over).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from guardflow.testing.model_servers import MLflowModelServer

ROOT = Path(__file__).resolve().parents[1]


def _run(step: str, cmd: list[str], env: dict[str, str]) -> None:
    print(f"\n==> {step}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"demo step failed: {step} (exit {proc.returncode})")


def _airflow_env(demo: Path, url: str) -> dict[str, str]:
    host_port = url.split("://", 1)[1]
    host, port = host_port.split(":")
    conn = {
        "conn_type": "guardflow_inference",
        "host": host,
        "port": int(port),
        "schema": "http",
        "extra": {"protocol": "mlflow", "batch_size": 50, "concurrency": 2},
    }
    return os.environ | {
        "AIRFLOW_HOME": str(demo / "airflow" / "home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_GUARDFLOW_INFERENCE_DEFAULT": json.dumps(conn),
        "GUARDFLOW_DEMO_DIR": str(demo),
        "GUARDFLOW_AUDIT_PATH": str(demo / "audit.jsonl"),
    }


def _prefect_env(demo: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return env | {
        "PREFECT_HOME": str(demo / "prefect" / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GUARDFLOW_ENDPOINT_URL": url,
        "GUARDFLOW_DEMO_DIR": str(demo),
        "GUARDFLOW_AUDIT_PATH": str(demo / "audit.jsonl"),
    }


def main() -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefect-python", help="interpreter of the Prefect environment")
    parser.add_argument("--demo-dir", default=str(ROOT / ".demo"), help="where outputs go")
    parser.add_argument("--skip-airflow", action="store_true")
    parser.add_argument("--skip-prefect", action="store_true")
    args = parser.parse_args()
    demo = Path(args.demo_dir).resolve()
    for home in ("airflow/home", "prefect/home"):
        # Prefect's SQLite database cannot be created in a folder that does not exist yet.
        (demo / home).mkdir(parents=True, exist_ok=True)

    print("==> starting the local MLflow model server (10-20 s)", flush=True)
    server = MLflowModelServer(workdir=demo / "model-server")
    server.start()
    try:
        print(f"    model server ready at {server.url}")
        if not args.skip_airflow:
            env = _airflow_env(demo, server.url)
            _run(
                "airflow db migrate (SQLite)",
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env,
            )
            dag_file = ROOT / "example_dags" / "airflow" / "guardflow_reference.py"
            _run(
                "Airflow: guardflow_reference with dag.test()", [sys.executable, str(dag_file)], env
            )
        if not args.skip_prefect:
            if not args.prefect_python:
                sys.exit("--prefect-python is required unless --skip-prefect is given")
            flow_file = ROOT / "example_dags" / "prefect" / "guardflow_reference.py"
            env = _prefect_env(demo, server.url)
            _run("Prefect: guardflow_reference flow", [args.prefect_python, str(flow_file)], env)
    finally:
        server.stop()

    print("\n==> results")
    for path in sorted(demo.rglob("*")):
        skipped = {"model-server", "home", "audit.jsonl"}
        wanted = {".parquet", ".jsonl", ".csv"}
        parts = set(path.relative_to(demo).parts)
        if path.is_file() and path.suffix in wanted and not skipped & parts:
            print(f"    {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"    audit trail: {demo / 'audit.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
