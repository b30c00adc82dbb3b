"""A throw-away Airflow 3 for benchmarks: api-server, scheduler, triggerer, dag-processor.

Every component is a real ``airflow`` subprocess of the interpreter running the benchmark (start it
from ``.venv-airflow``), sharing a temporary ``AIRFLOW_HOME`` whose metadata database is SQLite
(Airflow 3.3 accepts LocalExecutor on SQLite). The REST API is reached with a JWT from the simple
auth manager (``simple_auth_manager_all_admins`` on, ``GET /auth/token``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from guardflow.testing._ports import free_port

__all__ = ["AirflowCluster"]

COMPONENTS = ("api-server", "scheduler", "triggerer", "dag-processor")


class AirflowCluster:
    """Start and stop a local Airflow with LocalExecutor; small REST helpers.

    Args:
        dags: File name to DAG source, written to the DAGs folder before the components start.
        parallelism: ``[core] parallelism``: the LocalExecutor's worker slots.
        extra_env: More environment for every component (and the tasks they run).
        keep: Keep the temporary AIRFLOW_HOME (logs) after stopping.
    """

    def __init__(
        self,
        dags: Mapping[str, str],
        *,
        parallelism: int = 4,
        extra_env: Mapping[str, str] | None = None,
        keep: bool = False,
    ) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="guardflow-bench-airflow-"))
        self.keep = keep
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.parallelism = parallelism
        dags_folder = self.home / "dags"
        dags_folder.mkdir()
        for name, source in dags.items():
            (dags_folder / name).write_text(source, encoding="utf-8")
        bin_dir = Path(sys.executable).parent
        self.airflow = str(bin_dir / "airflow")
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            # Not a worker limit, and the default (16) would cap how many mapped gates open at once.
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1000",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
            # Shared by every component so tokens issued by one are accepted by the others.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        self._client: httpx.Client | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 240.0) -> None:
        """Migrate the database, start the four components, wait for the API and the DAGs."""
        subprocess.run(
            [self.airflow, "db", "migrate"],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in COMPONENTS:
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [self.airflow, name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait(lambda: self._api_up(), timeout, "the api-server to answer")

    def _api_up(self) -> bool:
        self._check_alive()
        try:
            return httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.home / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"airflow {name} exited ({proc.returncode}):\n{tail}")

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL) and remove AIRFLOW_HOME unless kept."""
        if self._client is not None:
            self._client.close()
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if not self.keep:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(
        self, condition: Callable[[], Any], timeout: float, what: str, step: float = 1.0
    ) -> Any:
        """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(step)

    # REST ------------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        """An httpx client on the REST API with a bearer token (simple auth manager, all admins)."""
        if self._client is None:
            token = httpx.get(f"{self.url}/auth/token", timeout=10).json()["access_token"]
            self._client = httpx.Client(
                base_url=f"{self.url}/api/v2",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        return self._client

    def dag_ids(self) -> set[str]:
        """DAG ids the dag-processor has serialized so far."""
        self._check_alive()
        response = self.client.get("/dags", params={"limit": 100})
        response.raise_for_status()
        return {d["dag_id"] for d in response.json()["dags"]}

    def trigger(self, dag_id: str, run_id: str) -> str:
        """Create a DAG run now; return its run id."""
        response = self.client.post(
            f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None}
        )
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones included)."""
        self._check_alive()
        response = self.client.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )
        response.raise_for_status()
        return list(response.json()["task_instances"])

    def states(self, dag_id: str, run_id: str, task_id: str | None = None) -> Counter[str]:
        """Task instance states of a run, counted (``None`` shown as ``none``)."""
        return Counter(
            str(ti["state"] or "none")
            for ti in self.task_instances(dag_id, run_id)
            if task_id is None or ti["task_id"] == task_id
        )

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> dict[str, Any]:
        """One (mapped) task instance."""
        response = self.client.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}"
        )
        response.raise_for_status()
        return dict(response.json())

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each component, its children included.

        The scheduler's executor workers and the task processes they ran count towards the
        scheduler.
        """
        import psutil

        used: dict[str, float] = {}
        for name, popen in self.procs.items():
            total = 0.0
            try:
                proc = psutil.Process(popen.pid)
                for member in [proc, *proc.children(recursive=True)]:
                    try:
                        t = member.cpu_times()
                    except psutil.Error:
                        continue
                    # Own time plus the time of children it reaped: a process that ends moves
                    # its time into its parent's ``children_*``, so nothing is lost or doubled.
                    total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
            used[name] = total
        return used

    def task_processes(self) -> int:
        """Processes currently running a task: children of the scheduler's executor workers.

        LocalExecutor workers are long-lived children of the scheduler; each task they run is a
        supervisor process (and its task process) below a worker. Count the workers that have a
        child: that is the number of executor slots doing work right now.
        """
        import psutil

        scheduler = psutil.Process(self.procs["scheduler"].pid)
        busy = 0
        for proc in scheduler.children(recursive=True):
            try:
                if "LocalExecutor" not in " ".join(proc.cmdline()):
                    continue
                live = [c for c in proc.children() if c.status() != psutil.STATUS_ZOMBIE]
                busy += bool(live)
            except psutil.Error:
                continue
        return busy
