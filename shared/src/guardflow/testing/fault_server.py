"""A real local model server with scripted faults, for testing retries, dead letters and resumes.

:class:`FaultServer` is a stdlib :class:`~http.server.ThreadingHTTPServer` on ``127.0.0.1`` (a
free port) in a background thread. It speaks enough of each protocol for guardflow's adapters:
MLflow ``/invocations`` + ``/ping``, Open Inference Protocol v2 ``/v2/models/{m}/infer`` + ready
endpoints, BentoML ``/predict`` + ``/readyz``, OpenAI-compatible ``/v1/chat/completions``,
``/v1/embeddings`` + ``/v1/models``, and plain JSON at ``/json``. Its "model" is deterministic:
:func:`predict_row` (the sum of a row's numeric values).

Faults are queued and each one is used by the next inference request (readiness probes are never
faulted); :attr:`FaultServer.default_fault` applies once the queue is empty. Every request is
recorded (:class:`RecordedRequest`: path, headers including ``Idempotency-Key``, row count).

Examples:
    >>> with FaultServer() as server:
    ...     server.add_faults(Fault.throttle(retry_after="2"), Fault.unavailable())
    ...     server.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from guardflow.testing._service import StartStop

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Fault", "FaultServer", "RecordedRequest", "fault_server", "predict_row"]

_V2 = re.compile(
    r"^/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/(?P<op>infer|ready)$"
)


def predict_row(row: Mapping[str, Any] | list[Any]) -> float:
    """The server's model: the sum of a row's numeric (non-boolean) values."""
    values = row.values() if isinstance(row, Mapping) else row
    return float(sum(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)))


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, used by one inference request.

    Args:
        kind: ``"ok"``, ``"status"``, ``"slow"``, ``"malformed"``, ``"wrong_count"`` or
            ``"disconnect"``.
        status: The HTTP status of a ``"status"`` fault.
        retry_after: ``Retry-After`` header value (seconds or an HTTP date).
        delay: Seconds a ``"slow"`` fault waits before answering normally.
        delta: Predictions added (or removed, when negative) by ``"wrong_count"``.
    """

    kind: str
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    delta: int = -1

    @classmethod
    def ok(cls) -> Fault:
        """Answer normally (a placeholder in the queue)."""
        return cls("ok")

    @classmethod
    def http(cls, status: int, *, retry_after: str | None = None) -> Fault:
        """Answer ``status`` with a small JSON error body."""
        return cls("status", status=status, retry_after=retry_after)

    @classmethod
    def throttle(cls, *, retry_after: str | None = "1") -> Fault:
        """Answer 429 Too Many Requests with ``Retry-After``."""
        return cls.http(429, retry_after=retry_after)

    @classmethod
    def unavailable(cls, *, retry_after: str | None = None) -> Fault:
        """Answer 503 Service Unavailable."""
        return cls.http(503, retry_after=retry_after)

    @classmethod
    def server_error(cls) -> Fault:
        """Answer 500 Internal Server Error."""
        return cls.http(500)

    @classmethod
    def bad_request(cls) -> Fault:
        """Answer 400 Bad Request."""
        return cls.http(400)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` (longer than the client's read timeout, typically), then answer."""
        return cls("slow", delay=seconds)

    @classmethod
    def malformed_json(cls) -> Fault:
        """Answer 200 with a truncated JSON body."""
        return cls("malformed")

    @classmethod
    def wrong_count(cls, delta: int = -1) -> Fault:
        """Answer 200 with ``delta`` predictions too many (or too few)."""
        return cls("wrong_count", delta=delta)

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without answering."""
        return cls("disconnect")


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received.

    Args:
        method: ``GET`` or ``POST``.
        path: The request path.
        headers: Request headers, names in lower case.
        rows: Rows in an inference request (0 for probes).
        idempotency_key: The ``Idempotency-Key`` header, if sent.
        body: The decoded JSON body (``None`` for probes).
        received_at: ``time.monotonic()`` on arrival (for ordering, not for timing assertions).
    """

    method: str
    path: str
    headers: dict[str, str]
    rows: int
    idempotency_key: str | None
    body: Any
    received_at: float


def _rows_of(path: str, body: Any) -> list[Any]:
    """The rows an inference request carries, as dicts or lists of values."""
    if path == "/invocations":
        if "dataframe_split" in body:
            split = body["dataframe_split"]
            return [dict(zip(split["columns"], values, strict=False)) for values in split["data"]]
        return list(body.get("dataframe_records") or body.get("instances") or body.get("inputs"))
    if _V2.match(path):
        inputs = body["inputs"]
        if len(inputs) == 1 and len(inputs[0]["shape"]) == 2:
            n, k = inputs[0]["shape"]
            flat = inputs[0]["data"]
            return [flat[i * k : (i + 1) * k] for i in range(n)]
        return [
            dict(zip([i["name"] for i in inputs], values, strict=False))
            for values in zip(*[i["data"] for i in inputs], strict=False)
        ]
    if path == "/v1/chat/completions":
        return [body["messages"][-1]["content"]]
    if path == "/v1/embeddings":
        return list(body["input"])
    return list(body.get("instances", []))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: Any) -> None:
        return None

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._record(self, rows=0, body=None)
        path = self.path.split("?", 1)[0]
        match = _V2.match(path)
        if match and match["op"] == "ready":
            known = match["model"] == owner.model_name
            self._send(200 if known and owner.ready else (404 if not known else 503), b"")
        elif path in ("/ping", "/health", "/readyz", "/v2/health/ready") or path.startswith(
            "/json"
        ):
            self._send(200 if owner.ready else 503, b"")
        elif path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": owner.model_name}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        try:
            body = json.loads(raw)
            rows = _rows_of(path, body)
        except (ValueError, KeyError, TypeError, IndexError):
            owner._record(self, rows=0, body=None)
            self._json(400, {"error": "unreadable request"})
            return
        owner._record(self, rows=len(rows), body=body)
        fault = owner._next_fault()
        try:
            if fault.kind == "disconnect":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault.kind == "status":
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._json(fault.status, {"error": f"scripted HTTP {fault.status}"}, extra)
            elif fault.kind == "malformed":
                self._send(200, b'{"predictions": [1.0, 2', "application/json")
            else:
                if fault.kind == "slow":
                    owner._stopping.wait(fault.delay)
                self._answer(path, body, rows, fault)
        except OSError:  # the client gave up (timeout) or the server is stopping
            self.close_connection = True

    def _answer(self, path: str, body: Any, rows: list[Any], fault: Fault) -> None:
        owner = self.server.owner
        scores = [predict_row(r) if not isinstance(r, str) else float(len(r)) for r in rows]
        if fault.kind == "wrong_count":
            scores = (
                scores[: len(scores) + fault.delta]
                if fault.delta < 0
                else scores + [0.0] * fault.delta
            )
        match = _V2.match(path)
        if match:
            if match["model"] != owner.model_name:
                self._json(404, {"error": f"model {match['model']} not found"})
                return
            output = {
                "name": "predict",
                "shape": [len(scores), 1],
                "datatype": "FP64",
                "data": scores,
            }
            answer: Any = {
                "model_name": owner.model_name,
                "model_version": owner.model_version,
                "id": body.get("id", ""),
                "outputs": [output],
            }
        elif path == "/invocations":
            answer = {"predictions": scores}
        elif path == "/v1/chat/completions":
            message = {"role": "assistant", "content": f"chars:{len(rows[0])}"}
            answer = {"model": owner.model_name, "choices": [{"index": 0, "message": message}]}
        elif path == "/v1/embeddings":
            # Reversed on purpose: clients must re-order by index.
            data = [{"index": i, "embedding": [s, 1.0]} for i, s in enumerate(scores)][::-1]
            answer = {"model": owner.model_name, "data": data}
        elif path == "/json":
            answer = {"result": {"scores": scores}}
        else:
            answer = scores  # BentoML answers the bare result
        self._json(200, answer)

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self,
        status: int,
        data: bytes,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultServer


class FaultServer(StartStop):
    """A scriptable local model server (see the module docstring).

    Args:
        model_name: The model it serves (v2 path, OpenAI model id).
        model_version: The version it reports (v2).
        host: Interface to bind; loopback by default.

    Attributes:
        ready: Whether readiness probes succeed ("model loaded"); set ``False`` to fail them.
        default_fault: The fault used once the queue is empty (``None``: answer normally).
    """

    def __init__(
        self, *, model_name: str = "model", model_version: str = "1", host: str = "127.0.0.1"
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.ready = True
        self.default_fault: Fault | None = None
        self._host, self._port = host, 0
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43117``."""
        return f"http://{self._host}:{self._port}"

    def start(self) -> Self:
        """Start serving (again, on the same port, after :meth:`stop`)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server((self._host, self._port), _Handler)
        httpd.owner = self
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.02,), name="fault-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection (clients see the server go away)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def add_faults(self, *faults: Fault) -> None:
        """Queue faults; each is used by one inference request, in order."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, probes included, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def inference_requests(self) -> list[RecordedRequest]:
        """The POST (inference) requests received so far."""
        return [r for r in self.requests if r.method == "POST"]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` inference requests arrived; return whether they did."""
        with self._lock:
            return self._lock.wait_for(
                lambda: sum(r.method == "POST" for r in self._requests) >= count, timeout
            )

    def _next_fault(self) -> Fault:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        return self.default_fault or Fault.ok()

    def _record(self, handler: _Handler, *, rows: int, body: Any) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = RecordedRequest(
            handler.command,
            handler.path,
            headers,
            rows,
            headers.get("idempotency-key"),
            body,
            time.monotonic(),
        )
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)


def _fault_server() -> Iterator[FaultServer]:
    """A started :class:`FaultServer`, stopped after the test."""
    with FaultServer() as server:
        yield server


def _as_fixture(func: Any) -> Any:
    try:
        import pytest
    except ImportError:  # importable without pytest; the fixture exists only with it
        return func
    return pytest.fixture(name="fault_server")(func)


fault_server: Any = _as_fixture(_fault_server)
"""pytest fixture (function scope): a started :class:`FaultServer`, stopped after the test."""
