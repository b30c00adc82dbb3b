"""Protocol adapters: turn a batch of rows into requests, and answers into one prediction per row.

One adapter per :class:`~guardflow.inference.config.Protocol`. An adapter knows paths and JSON
shapes and nothing about HTTP, retries or files, so each is a pair of pure functions that tests
can call directly. Every parser checks that it got exactly one prediction per row and raises
:class:`~guardflow.errors.MalformedResponseError` otherwise; messages describe shapes and types,
never the values.

- ``v2``: ``POST /v2/models/{m}[/versions/{v}]/infer``, predictions from ``outputs[0].data``;
  ready: ``GET /v2/models/{m}/ready`` (status code only) or ``/v2/health/ready``.
- ``mlflow``: ``POST /invocations`` with ``dataframe_split``; ``predictions``; ready: ``/ping``.
- ``bentoml``: ``POST /{api_name}`` with ``{json_request_key: rows}``; the bare result;
  ready: ``/readyz``.
- ``openai``: ``POST /v1/chat/completions``, one request per row; ``choices[0].message.content``;
  ready: ``/v1/models`` (lists the model).
- ``openai-embeddings``: ``POST /v1/embeddings``; ``data`` re-ordered by ``index``; as above.
- ``json``: ``POST {url}`` with ``{json_request_key: rows}``; the list at ``json_response_path``;
  ready: ``endpoint.ready_path`` or ``/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guardflow.errors import ConfigurationError, MalformedResponseError
from guardflow.inference.config import EndpointConfig, Protocol

__all__ = [
    "BentoMLAdapter",
    "JSONAdapter",
    "MLflowAdapter",
    "OpenAIChatAdapter",
    "OpenAIEmbeddingsAdapter",
    "ParsedBatch",
    "ProtocolAdapter",
    "V2Adapter",
    "WireRequest",
    "adapter_for",
]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class WireRequest:
    """One HTTP request of a batch: a path below the endpoint URL and a JSON body."""

    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class ParsedBatch:
    """Predictions parsed from the answer(s) to one batch, one per row, in row order."""

    predictions: list[Any]
    model_name: str | None = None
    model_version: str | None = None


class ProtocolAdapter:
    """Base adapter: one request per batch, readiness by status code.

    Args:
        endpoint: The endpoint configuration.
    """

    default_ready_path = "/"

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint

    @property
    def ready_path(self) -> str:
        """Path of the readiness probe (``endpoint.ready_path`` overrides it)."""
        return self.endpoint.ready_path or self.default_ready_path

    def ready_problem(self, status: int, body: bytes) -> str | None:
        """Return why the probe answer means "not ready", or ``None`` when ready."""
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    def build(self, rows: Sequence[Row], *, request_id: str | None = None) -> list[WireRequest]:
        """Return the request(s) carrying ``rows``."""
        raise NotImplementedError

    def parse(self, payloads: Sequence[Any], n_rows: int, *, url: str) -> ParsedBatch:
        """Return one prediction per row from the decoded JSON answer(s) to :meth:`build`."""
        raise NotImplementedError

    def _malformed(self, url: str, detail: str) -> MalformedResponseError:
        return MalformedResponseError(
            f"the {self.endpoint.protocol.value} answer from {url} did not match the batch: "
            f"{detail}; check the protocol and model configuration",
            url=url,
            detail=detail,
        )

    def _count(self, predictions: Any, n_rows: int, url: str) -> list[Any]:
        if not isinstance(predictions, list):
            raise self._malformed(url, f"predictions are a {_kind(predictions)}, not a list")
        if len(predictions) != n_rows:
            raise self._malformed(url, f"expected {n_rows} predictions, got {len(predictions)}")
        return predictions


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "JSON object"
    return "string" if isinstance(value, str) else "scalar"


def _columns(rows: Sequence[Row]) -> list[str]:
    return list(rows[0].keys()) if rows else []


def _dig(payload: Any, path: str) -> Any:
    """Follow a dotted path (``"a.b.0"``) into decoded JSON; ``KeyError`` when it is absent."""
    for part in [p for p in path.split(".") if p]:
        if isinstance(payload, Mapping) and part in payload:
            payload = payload[part]
        elif isinstance(payload, list) and part.isdigit() and int(part) < len(payload):
            payload = payload[int(part)]
        else:
            raise KeyError(part)
    return payload


class MLflowAdapter(ProtocolAdapter):
    """MLflow scoring server: ``dataframe_split`` keeps column order and types."""

    default_ready_path = "/ping"

    def build(self, rows: Sequence[Row], *, request_id: str | None = None) -> list[WireRequest]:
        """Return one ``POST /invocations`` request."""
        columns = _columns(rows)
        data = [[row.get(c) for c in columns] for row in rows]
        body = {"dataframe_split": {"columns": columns, "data": data}}
        return [WireRequest("/invocations", body)]

    def parse(self, payloads: Sequence[Any], n_rows: int, *, url: str) -> ParsedBatch:
        """Read ``{"predictions": [...]}`` (or a bare list, as MLflow 1.x answered)."""
        payload = payloads[0]
        if isinstance(payload, Mapping):
            if "predictions" not in payload:
                raise self._malformed(url, "the answer has no 'predictions' field")
            payload = payload["predictions"]
        predictions = self._count(payload, n_rows, url)
        return ParsedBatch(predictions, self.endpoint.model_name, self.endpoint.model_version)


_V2_TYPES = (("BOOL", (bool,)), ("INT64", (int,)), ("FP64", (int, float)))


def _v2_datatype(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    for name, types in _V2_TYPES:
        if present and all(isinstance(v, types) for v in present):
            if name != "BOOL" and any(isinstance(v, bool) for v in present):
                continue
            return name
    return "BYTES"


class V2Adapter(ProtocolAdapter):
    """Open Inference Protocol v2 (KServe, Triton, MLServer, Seldon).

    By default each column is one input tensor of shape ``[rows]`` and the request asks for the
    pandas content type (what MLServer's runtimes decode into a DataFrame). With
    ``endpoint.v2_input_name`` set, the batch is one ``[rows, columns]`` tensor of that name.
    """

    @property
    def _model_path(self) -> str:
        name = self.endpoint.model_name
        if not name:
            raise ConfigurationError(
                "the v2 protocol needs endpoint.model_name (the model to call)"
            )
        version = self.endpoint.model_version
        return f"/v2/models/{name}" + (f"/versions/{version}" if version else "")

    @property
    def ready_path(self) -> str:
        """``/v2/models/{m}[/versions/{v}]/ready`` when a model is named, else server health."""
        if self.endpoint.ready_path:
            return self.endpoint.ready_path
        return f"{self._model_path}/ready" if self.endpoint.model_name else "/v2/health/ready"

    def build(self, rows: Sequence[Row], *, request_id: str | None = None) -> list[WireRequest]:
        """Return one ``POST .../infer`` request."""
        columns = _columns(rows)
        if self.endpoint.v2_input_name:
            data = [row.get(c) for row in rows for c in columns]
            inputs = [
                {
                    "name": self.endpoint.v2_input_name,
                    "shape": [len(rows), len(columns)],
                    "datatype": _v2_datatype(data),
                    "data": data,
                }
            ]
            body: dict[str, Any] = {"inputs": inputs}
        else:
            inputs = []
            for column in columns:
                values = [row.get(column) for row in rows]
                inputs.append(
                    {
                        "name": column,
                        "shape": [len(rows)],
                        "datatype": _v2_datatype(values),
                        "data": values,
                    }
                )
            body = {"parameters": {"content_type": "pd"}, "inputs": inputs}
        if request_id:
            body["id"] = request_id
        return [WireRequest(f"{self._model_path}/infer", body)]

    def parse(self, payloads: Sequence[Any], n_rows: int, *, url: str) -> ParsedBatch:
        """Read the first output tensor (or ``endpoint.v2_output_name``), one row per entry."""
        payload = payloads[0]
        outputs = payload.get("outputs") if isinstance(payload, Mapping) else None
        if not isinstance(outputs, list) or not outputs:
            raise self._malformed(url, "the answer has no 'outputs' list")
        wanted = self.endpoint.v2_output_name
        chosen = next(
            (o for o in outputs if isinstance(o, Mapping) and o.get("name") == wanted), None
        )
        output = chosen if chosen is not None else outputs[0]
        if wanted and chosen is None:
            raise self._malformed(url, f"no output tensor named {wanted!r}")
        if not isinstance(output, Mapping) or not isinstance(output.get("data"), list):
            raise self._malformed(url, "the output tensor has no 'data' list")
        data: list[Any] = output["data"]
        shape = output.get("shape") or [len(data)]
        if not isinstance(shape, list) or not shape or shape[0] != n_rows:
            raise self._malformed(url, f"expected an output of {n_rows} rows, got shape {shape}")
        width = 1
        for dim in shape[1:]:
            width *= int(dim)
        if len(data) == n_rows * width and width > 1 and not isinstance(data[0], list):
            data = [data[i * width : (i + 1) * width] for i in range(n_rows)]
        predictions = self._count(data, n_rows, url)
        predictions = [p[0] if isinstance(p, list) and len(p) == 1 else p for p in predictions]
        name = payload.get("model_name") or self.endpoint.model_name
        version = payload.get("model_version") or self.endpoint.model_version
        return ParsedBatch(predictions, name, None if version is None else str(version))


class BentoMLAdapter(ProtocolAdapter):
    """BentoML: ``POST /{api_name}`` with ``{json_request_key: rows}``; the answer is the list."""

    default_ready_path = "/readyz"

    def build(self, rows: Sequence[Row], *, request_id: str | None = None) -> list[WireRequest]:
        """Return one ``POST /{api_name}`` request with the rows as records."""
        body = {self.endpoint.json_request_key: [dict(row) for row in rows]}
        return [WireRequest(f"/{self.endpoint.api_name.strip('/')}", body)]

    def parse(self, payloads: Sequence[Any], n_rows: int, *, url: str) -> ParsedBatch:
        """Read the bare list (or the list at ``json_response_path`` in an object)."""
        payload = payloads[0]
        if isinstance(payload, Mapping):
            try:
                payload = _dig(payload, self.endpoint.json_response_path)
            except KeyError:
                raise self._malformed(url, "the answer is an object without predictions") from None
        predictions = self._count(payload, n_rows, url)
        return ParsedBatch(predictions, self.endpoint.model_name, self.endpoint.model_version)


class JSONAdapter(ProtocolAdapter):
    """Plain JSON: ``POST {url}`` with ``{json_request_key: rows}``; list at a dotted path."""

    def build(self, rows: Sequence[Row], *, request_id: str | None = None) -> list[WireRequest]:
        """Return one request to the endpoint URL itself."""
        return [WireRequest("", {self.endpoint.json_request_key: [dict(row) for row in rows]})]

    def parse(self, payloads: Sequence[Any], n_rows: int, *, url: str) -> ParsedBatch:
        """Follow ``json_response_path`` (dotted, e.g. ``"result.scores"``) to the list."""
        path = self.endpoint.json_response_path
        try:
            found = _dig(payloads[0], path)
        except KeyError:
            raise self._malformed(url, f"the answer has nothing at {path!r}") from None
        predictions = self._count(found, n_rows, url)
        return ParsedBatch(predictions, self.endpoint.model_name, self.endpoint.model_version)


class _OpenAIAdapter(ProtocolAdapter):
    default_ready_path = "/v1/models"

    def _model(self) -> str:
        if not self.endpoint.model_name:
            raise ConfigurationError("OpenAI-compatible protocols need endpoint.model_name")
        return self.endpoint.model_name

    def _texts(self, rows: Sequence[Row]) -> list[str]:
        column = self.endpoint.prompt_column
        if column is None:
            columns = _columns(rows)
            if len(columns) != 1:
                raise ConfigurationError(
                    "set endpoint.prompt_column: OpenAI-compatible protocols send one text "
                    f"column and the rows have {len(columns)}"
                )
            column = columns[0]
        return ["" if row.get(column) is None else str(row.get(column)) for row in rows]

    def ready_problem(self, status: int, body: bytes) -> str | None:
        """Ready when ``/v1/models`` answers 2xx and, if a model is named, lists it."""
        problem = super().ready_problem(status, body)
        if problem or not self.endpoint.model_name:
            return problem
        try:
            ids = [m.get("id") for m in json.loads(body).get("data", [])]
        except (ValueError, AttributeError, TypeError):
            return None  # servers that answer 200 with another shape are taken as ready
        if self.endpoint.model_name not in ids:
            return f"model {self.endpoint.model_name!r} is not among the {len(ids)} served"
        return None


class OpenAIChatAdapter(_OpenAIAdapter):
    """OpenAI-compatible chat completions: one request per row (the API takes one conversation).

    Keep ``batch_size`` small with this protocol: a batch is the unit of retry and checkpoint.
    """

    def build(self, rows: Sequence[Row], *, request_id: str | None = None) -> list[WireRequest]:
        """Return one ``POST /v1/chat/completions`` request per row."""
        model = self._model()
        system = [{"role": "system", "content": self.endpoint.system_prompt}]
        prefix = system if self.endpoint.system_prompt else []
        return [
            WireRequest(
                "/v1/chat/completions",
                {
                    **self.endpoint.openai_params,
                    "model": model,
                    "messages": [*prefix, {"role": "user", "content": text}],
                },
            )
            for text in self._texts(rows)
        ]

    def parse(self, payloads: Sequence[Any], n_rows: int, *, url: str) -> ParsedBatch:
        """Take ``choices[0].message.content`` of each answer."""
        self._count(list(payloads), n_rows, url)
        predictions = []
        for payload in payloads:
            try:
                predictions.append(_dig(payload, "choices.0.message.content"))
            except KeyError:
                raise self._malformed(url, "an answer has no choices[0].message") from None
        first = payloads[0] if payloads else {}
        model = first.get("model") if isinstance(first, Mapping) else None
        return ParsedBatch(
            predictions, model or self.endpoint.model_name, self.endpoint.model_version
        )


class OpenAIEmbeddingsAdapter(_OpenAIAdapter):
    """OpenAI-compatible embeddings: one request per batch, answers re-ordered by ``index``."""

    def build(self, rows: Sequence[Row], *, request_id: str | None = None) -> list[WireRequest]:
        """Return one ``POST /v1/embeddings`` request with every row's text."""
        body = {**self.endpoint.openai_params, "model": self._model(), "input": self._texts(rows)}
        return [WireRequest("/v1/embeddings", body)]

    def parse(self, payloads: Sequence[Any], n_rows: int, *, url: str) -> ParsedBatch:
        """Order ``data`` by ``index`` and check every row got exactly one embedding."""
        payload = payloads[0]
        data = payload.get("data") if isinstance(payload, Mapping) else None
        items = self._count(data, n_rows, url)
        try:
            ordered = sorted(items, key=lambda item: int(item["index"]))
            indexes = [int(item["index"]) for item in ordered]
            embeddings = [item["embedding"] for item in ordered]
        except (KeyError, TypeError, ValueError):
            raise self._malformed(url, "an item has no 'index' or 'embedding'") from None
        if indexes != list(range(n_rows)):
            raise self._malformed(url, "embedding indexes do not cover each row exactly once")
        model = payload.get("model") or self.endpoint.model_name
        return ParsedBatch(embeddings, model, self.endpoint.model_version)


_ADAPTERS: dict[Protocol, type[ProtocolAdapter]] = {
    Protocol.V2: V2Adapter,
    Protocol.MLFLOW: MLflowAdapter,
    Protocol.BENTOML: BentoMLAdapter,
    Protocol.OPENAI: OpenAIChatAdapter,
    Protocol.OPENAI_EMBEDDINGS: OpenAIEmbeddingsAdapter,
    Protocol.JSON: JSONAdapter,
}


def adapter_for(endpoint: EndpointConfig) -> ProtocolAdapter:
    """Return the adapter for ``endpoint.protocol``.

    Examples:
        >>> adapter_for(EndpointConfig(url="http://127.0.0.1:5001")).ready_path
        '/ping'
    """
    return _ADAPTERS[endpoint.protocol](endpoint)
