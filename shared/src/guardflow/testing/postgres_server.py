"""A throwaway PostgreSQL server for tests of the gate store with several workers.

:class:`PostgresServer` runs Debian's PostgreSQL binaries (``initdb``, ``postgres``) on a private
data directory and a free port of 127.0.0.1, with trust authentication for local TCP
connections, and removes everything when stopped. PostgreSQL refuses to run as root, so when the
tests run as root the server runs as the ``postgres`` system user (through ``runuser``).

The ``postgres_server`` fixture starts one per test session; ``postgres_url`` gives each test a
fresh database (SQLAlchemy URL with the ``psycopg`` driver).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardflow.testing._ports import free_port

__all__ = ["PostgresServer", "find_postgres_bin", "postgres_server", "postgres_url"]


def find_postgres_bin() -> Path | None:
    """Return the folder holding ``initdb`` and ``postgres`` (newest version), or ``None``."""
    override = os.environ.get("GUARDFLOW_POSTGRES_BIN")
    if override:
        return Path(override)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1 for the length of a test session.

    Args:
        bin_dir: Folder with ``initdb``, ``postgres`` and ``psql``.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="guardflow-postgres-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """Create the cluster, start the server and wait until it accepts connections."""
        data = self._root / "data"
        if self._as_user:
            shutil.chown(self._root, user="postgres")
        log = self._root / "server.log"
        subprocess.run(
            [*self._as_user, str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        self._proc = subprocess.Popen(
            [*self._as_user, str(self.bin_dir / "postgres"), "-D", str(data), "-p",
             str(self.port), "-h", "127.0.0.1", "-k", str(self._root), "-c", "fsync=off",
             "-c", "max_connections=200"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited; see {log}")
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"postgres did not start within {timeout:.0f} s; see {log}")

    def create_database(self) -> str:
        """Create a fresh database and return its SQLAlchemy URL."""
        name = f"gf_{uuid.uuid4().hex[:12]}"
        subprocess.run(
            [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres", "-d", "postgres", "-c", f"CREATE DATABASE {name}"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server and remove its files."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self._root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server (Debian's binaries) for the session; skipped when none is installed.

    ``make test`` installs Debian's ``postgresql`` package when it is missing and sets
    ``GUARDFLOW_REQUIRE_POSTGRES=1``, so in CI a missing server fails instead of skipping; set
    ``GUARDFLOW_POSTGRES_BIN`` to use binaries elsewhere.
    """
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        message = "PostgreSQL is not installed (make postgres installs Debian's package)"
        if os.environ.get("GUARDFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)  # CI sets this: a missing server must not pass as a skip
        pytest.skip(message)
    server = PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server (SQLAlchemy URL)."""
    return postgres_server.create_database()
