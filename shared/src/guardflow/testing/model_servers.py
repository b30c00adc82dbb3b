"""Real model servers for tests: MLflow's scoring server and MLServer (Open Inference Protocol v2).

Both serve the same tiny deterministic model, a linear regression fitted exactly on
``prediction = 0.5 + 1*f0 + 2*f1 + 3*f2 + 4*f3``, so a test can check that every prediction
belongs to its row (:func:`expected_prediction`), not only that the counts match.

Servers are separate processes in their own process group, bound to a free loopback port that
stays the same across :meth:`~ModelServer.restart`; their output goes to a log file whose tail is
quoted when a server fails to start. MLServer pins an old FastAPI that cannot share an environment
with Airflow or Prefect, so it runs from its own virtual environment, built once into a cache
folder (see :func:`ensure_mlserver_env`). Nothing here imports pytest, mlflow or scikit-learn.

Examples:
    >>> from guardflow.testing.model_servers import MLflowModelServer, sample_rows
    >>> with MLflowModelServer() as server:  # doctest: +SKIP
    ...     httpx.post(f"{server.url}/invocations", json={"dataframe_records": sample_rows(3)})
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from guardflow.errors import ConfigurationError, EndpointNotReadyError
from guardflow.testing._ports import free_port
from guardflow.testing._service import StartStop

if TYPE_CHECKING:
    from typing_extensions import Self

    from guardflow.inference.config import EndpointConfig

__all__ = [
    "COEFFICIENTS",
    "FEATURES",
    "INTERCEPT",
    "MLSERVER_VERSION",
    "MLServerEnv",
    "MLServerModelServer",
    "MLflowModelServer",
    "ModelServer",
    "ensure_mlserver_env",
    "expected_prediction",
    "sample_rows",
]

FEATURES: tuple[str, ...] = ("f0", "f1", "f2", "f3")
COEFFICIENTS: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
INTERCEPT = 0.5
MLSERVER_VERSION = "1.7.1"

# Runs in the serving environment's own interpreter so the pickle matches its scikit-learn.
_TRAIN_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
from sklearn.linear_model import LinearRegression
kind, out, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
X = np.random.default_rng(0).normal(size=(64, len(spec["features"])))
y = X @ np.array(spec["coefficients"]) + spec["intercept"]
# Named columns: MLflow and MLServer (pandas content type) both hand the model a DataFrame.
X = pd.DataFrame(X, columns=spec["features"])
model = LinearRegression().fit(X, y)
if kind == "mlflow":
    import mlflow.sklearn, sklearn
    from mlflow.models import infer_signature
    mlflow.sklearn.save_model(
        model, out, signature=infer_signature(X, model.predict(X)),
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
    )
else:
    import joblib
    joblib.dump(model, out)
"""

_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONUNBUFFERED": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
_LIVE: set[ModelServer] = set()


def expected_prediction(row: Mapping[str, Any]) -> float:
    """Return what the tiny model predicts for ``row`` (a mapping with the :data:`FEATURES`)."""
    return INTERCEPT + sum(c * float(row[f]) for c, f in zip(COEFFICIENTS, FEATURES, strict=True))


def sample_rows(n: int, *, seed: int = 0, key_column: str | None = None) -> list[dict[str, Any]]:
    """Return ``n`` deterministic input rows for the tiny model.

    Args:
        n: Number of rows.
        seed: Seed of the values.
        key_column: When given, each row also gets this column holding ``"row-<i>"``.

    Returns:
        Rows with the :data:`FEATURES` as floats (and the key column first, when asked).
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {key_column: f"row-{i}"} if key_column else {}
        row.update({f: round(rng.uniform(-10.0, 10.0), 6) for f in FEATURES})
        rows.append(row)
    return rows


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if sys.platform == "win32" else "bin")


def _run(cmd: list[str], *, log: Path, env: Mapping[str, str], timeout: float, what: str) -> None:
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            code = subprocess.run(
                cmd, stdout=fh, stderr=subprocess.STDOUT, env=dict(env), timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0:
        raise ConfigurationError(
            f"{what} failed (exit {code}); see {log}. Last lines:\n{_tail(log)}"
        )


def _train(python: str, kind: str, out: Path, *, log: Path, env: Mapping[str, str]) -> None:
    spec = json.dumps(
        {"features": list(FEATURES), "coefficients": list(COEFFICIENTS), "intercept": INTERCEPT}
    )
    cmd = [python, "-c", _TRAIN_SCRIPT, kind, str(out), spec]
    _run(cmd, log=log, env=env, timeout=300, what=f"training the tiny {kind} model")


class ModelServer(StartStop):
    """A model server process on a free loopback port; subclasses say how to prepare and run it.

    Args:
        workdir: Folder for the model, settings and ``server.log``; a temporary one by default.
        startup_timeout: Seconds :meth:`wait_ready` waits for the server to answer.
    """

    protocol = ""
    model_name: str | None = None
    model_version: str | None = None

    def __init__(
        self, workdir: str | os.PathLike[str] | None = None, *, startup_timeout: float = 120.0
    ) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"guardflow-{self.protocol}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "server.log"
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepared = False

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:50123``; the same across restarts."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the server's process-group leader, while running."""
        return self._proc.pid if self.is_running() and self._proc else None

    def endpoint(self, **overrides: Any) -> EndpointConfig:
        """Return an :class:`~guardflow.inference.config.EndpointConfig` for this server.

        Args:
            **overrides: Any other ``EndpointConfig`` field (timeouts, headers...).
        """
        from guardflow.inference.config import EndpointConfig

        fields: dict[str, Any] = {"url": self.url, "protocol": self.protocol}
        if self.model_name:
            fields["model_name"] = self.model_name
        return EndpointConfig(**{**fields, **overrides})

    def is_running(self) -> bool:
        """Whether the server process is alive (not whether it is ready)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Prepare the model once, start the server and wait until it is ready.

        Returns:
            The server itself, so ``server = MLflowModelServer().start()`` reads well.

        Raises:
            EndpointNotReadyError: The server exited or did not get ready in time; the message
                quotes the tail of the server log.
            ConfigurationError: Preparing the model or its environment failed.
        """
        if self.is_running():
            return self
        if not self._prepared:
            self._prepare()
            self._prepared = True
        self.starts += 1
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n=== guardflow: start #{self.starts} on port {self.port} ===\n")
            fh.flush()
            self._proc = subprocess.Popen(
                self._command(),
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                cwd=self.workdir,
                start_new_session=True,  # own process group: stop() reaches the workers too
            )
        _LIVE.add(self)
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every readiness path answers 200.

        Args:
            timeout: Seconds to wait; :attr:`startup_timeout` by default.

        Raises:
            EndpointNotReadyError: The process exited or the timeout expired.
        """
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        with httpx.Client(base_url=self.url, timeout=2.0, trust_env=False) as client:
            while True:
                if not self.is_running():
                    self._fail("exited before it was ready")
                with contextlib.suppress(httpx.HTTPError):
                    if all(client.get(p).status_code == 200 for p in self._ready_paths()):
                        return
                if time.monotonic() > deadline:
                    self._fail("was not ready in time")
                time.sleep(0.1)  # polling a foreign process: there is no event to wait on

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server gracefully (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL to its process group), as a crash would."""
        self._signal(getattr(signal, "SIGKILL", signal.SIGTERM), 10.0)

    def restart(self) -> Self:
        """Stop the server if it runs, then start it again on the same port and wait for it."""
        self.stop()
        return self.start()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {self.url} {state}>"

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        deadline = time.monotonic() + timeout
        self._signal_group(proc, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        # The leader may be gone while its worker (uvicorn under mlflow's CLI) still shuts down.
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))  # sweep stragglers
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sys.platform == "win32":
                proc.send_signal(sig)
            else:
                os.killpg(proc.pid, sig)

    def _fail(self, what: str) -> None:
        raise EndpointNotReadyError(
            f"{type(self).__name__} {what} (log: {self.log_path}). Last lines:\n"
            f"{_tail(self.log_path)}",
            url=self.url,
        )

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **_QUIET_ENV}
        # Servers spawn helper executables by name (mlflow runs `uvicorn`): find ours first.
        env["PATH"] = os.pathsep.join([str(Path(self._python()).parent), env.get("PATH", "")])
        env.pop("PYTHONPATH", None)
        return env

    def _python(self) -> str:
        return sys.executable

    def _prepare(self) -> None:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready_paths(self) -> list[str]:
        raise NotImplementedError


class MLflowModelServer(ModelServer):
    """MLflow's scoring server (``mlflow models serve --env-manager local``) on the tiny model.

    It runs with this interpreter's mlflow, so mlflow and scikit-learn must be installed here.
    Predict with ``POST {url}/invocations`` and ``{"dataframe_records": rows}``.

    Args:
        workdir: Folder for the model and ``server.log``; a temporary one by default.
        workers: Uvicorn workers (``mlflow models serve -w``).
        startup_timeout: Seconds to wait for ``/ping`` (the server takes 10-20 s to start).

    Examples:
        >>> server = MLflowModelServer().start()  # doctest: +SKIP
        >>> server.restart()  # doctest: +SKIP
        >>> server.stop()  # doctest: +SKIP
    """

    protocol = "mlflow"
    model_name = "tiny-model"

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        workers: int = 1,
        startup_timeout: float = 120.0,
    ) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.workers = workers
        self.model_dir = self.workdir / "model"

    def _prepare(self) -> None:
        if not (self.model_dir / "MLmodel").exists():
            log = self.workdir / "train.log"
            _train(self._python(), "mlflow", self.model_dir, log=log, env=self._env())

    def _command(self) -> list[str]:
        return [
            *(self._python(), "-m", "mlflow", "models", "serve", "-m", str(self.model_dir)),
            *("--env-manager", "local", "-h", "127.0.0.1", "-p", str(self.port)),
            *("-w", str(self.workers)),
        ]

    def _ready_paths(self) -> list[str]:
        return ["/ping"]


@dataclass(frozen=True)
class MLServerEnv:
    """A virtual environment with MLServer installed.

    Args:
        path: The environment's folder.
        python: Its interpreter.
        build_seconds: How long building it took, or None when a cached one was reused.
    """

    path: Path
    python: Path
    build_seconds: float | None

    @property
    def mlserver(self) -> Path:
        """The ``mlserver`` executable."""
        return self.python.parent / ("mlserver.exe" if sys.platform == "win32" else "mlserver")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    if sys.platform == "win32":  # builds are rare; Windows sessions just do not share them safely
        yield
        return
    import fcntl

    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_mlserver_env(
    *, version: str = MLSERVER_VERSION, cache_dir: str | os.PathLike[str] | None = None
) -> MLServerEnv:
    """Return MLServer's own virtual environment, building it once if it is not cached.

    The environment lives in ``<cache>/mlserver-<version>`` where ``<cache>`` is ``cache_dir``,
    else ``$GUARDFLOW_CACHE_DIR``, else ``~/.cache/guardflow``. It is built with ``uv`` when uv is
    on PATH (else ``venv`` + pip) from this interpreter's Python, under a file lock so concurrent
    sessions build it once; a half-built environment is rebuilt.

    Args:
        version: MLServer version (``mlserver`` and ``mlserver-sklearn``).
        cache_dir: Cache folder overriding the default.

    Returns:
        The environment.

    Raises:
        ConfigurationError: The build failed (for example no access to the package index); the
            message quotes the tail of ``<cache>/mlserver-<version>.build.log``.
    """
    root = Path(
        cache_dir or os.environ.get("GUARDFLOW_CACHE_DIR") or Path.home() / ".cache" / "guardflow"
    )
    venv = root / f"mlserver-{version}"
    python = _bin_dir(venv) / ("python.exe" if sys.platform == "win32" else "python")
    marker = venv / ".guardflow-complete"
    if marker.exists():
        return MLServerEnv(venv, python, None)
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f"mlserver-{version}.lock"):
        if marker.exists():
            return MLServerEnv(venv, python, None)
        shutil.rmtree(venv, ignore_errors=True)
        log = root / f"mlserver-{version}.build.log"
        env = {**os.environ, **_QUIET_ENV, "UV_PYTHON_DOWNLOADS": "never"}
        env.pop("VIRTUAL_ENV", None)
        packages = [f"mlserver=={version}", f"mlserver-sklearn=={version}", "scikit-learn"]
        start = time.monotonic()
        uv = os.environ.get("UV") or shutil.which("uv")  # `make` exports the uv it uses
        what = f"building MLServer {version}'s environment in {venv}"
        if uv:
            _run([uv, "venv", "--python", sys.executable, str(venv)], log=log, env=env,
                 timeout=300, what=what)  # fmt: skip
            cmd = [uv, "pip", "install", "--python", str(python), *packages]
        else:
            _run([sys.executable, "-m", "venv", str(venv)], log=log, env=env, timeout=300,
                 what=what)  # fmt: skip
            cmd = [str(python), "-m", "pip", "install", *packages]
        _run(cmd, log=log, env=env, timeout=1800, what=what)
        seconds = time.monotonic() - start
        marker.write_text(json.dumps({"build_seconds": round(seconds, 1)}), encoding="utf-8")
        return MLServerEnv(venv, python, seconds)


class MLServerModelServer(ModelServer):
    """MLServer serving the tiny model over the Open Inference Protocol v2 (model ``tiny-model``).

    Predict with ``POST {url}/v2/models/tiny-model/infer``. The first use builds MLServer's own
    environment (see :func:`ensure_mlserver_env`); :attr:`env` tells whether and how long.

    Args:
        workdir: Folder for the model, settings and ``server.log``; a temporary one by default.
        cache_dir: Where MLServer's environment is cached (see :func:`ensure_mlserver_env`).
        startup_timeout: Seconds to wait for the server and the model to be ready.
    """

    protocol = "v2"
    model_name = "tiny-model"
    model_version = "1"

    def __init__(
        self,
        workdir: str | os.PathLike[str] | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        super().__init__(workdir, startup_timeout=startup_timeout)
        self.cache_dir = cache_dir
        self.env: MLServerEnv | None = None
        self.model_dir = self.workdir / "models" / "tiny-model"
        self.grpc_port = free_port()  # MLServer 1.x cannot switch gRPC off; keep it on loopback

    def _python(self) -> str:
        if self.env is None:
            self.env = ensure_mlserver_env(cache_dir=self.cache_dir)
        return str(self.env.python)

    def _prepare(self) -> None:
        python = self._python()
        self.model_dir.mkdir(parents=True, exist_ok=True)
        model_file = self.model_dir / "model.joblib"
        if not model_file.exists():
            log = self.workdir / "train.log"
            _train(python, "joblib", model_file, log=log, env=self._env())
        settings = {
            "host": "127.0.0.1",
            "http_port": self.port,
            "grpc_port": self.grpc_port,
            "metrics_endpoint": None,
            "parallel_workers": 0,  # inference in the server process: faster start, one process
        }
        model_settings = {
            "name": self.model_name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": self.model_version},
        }
        (self.workdir / "models" / "settings.json").write_text(json.dumps(settings), "utf-8")
        (self.model_dir / "model-settings.json").write_text(json.dumps(model_settings), "utf-8")

    def _command(self) -> list[str]:
        assert self.env is not None  # set by _prepare()
        return [str(self.env.mlserver), "start", str(self.workdir / "models")]

    def _ready_paths(self) -> list[str]:
        return ["/v2/health/ready", f"/v2/models/{self.model_name}/ready"]


@atexit.register
def _stop_live_servers() -> None:
    # A session that ends without its fixture teardown (Ctrl-C, a crash) must not leave servers.
    for server in list(_LIVE):
        server.kill()
