"""Protocol adapters: requests built from rows, answers parsed into exactly one prediction per row.

Pure-function tests pin each wire format; the round trips at the end send real requests to the
FaultServer, which speaks every protocol.
"""

from __future__ import annotations

from typing import Any

import pytest

from guardflow.errors import ConfigurationError, MalformedResponseError
from guardflow.inference import EndpointConfig, InferenceClient
from guardflow.inference.protocols import ProtocolAdapter, adapter_for
from guardflow.testing.fault_server import FaultServer, predict_row

URL = "http://127.0.0.1:9"
ROWS = [{"a": 1, "b": 2.5, "ok": True, "tag": "x"}, {"a": 3, "b": 0.5, "ok": False, "tag": "y"}]


def adapter(**endpoint: Any) -> ProtocolAdapter:
    return adapter_for(EndpointConfig(url=URL, **endpoint))


# --- MLflow -----------------------------------------------------------------------------------


def test_mlflow_sends_dataframe_split_to_invocations() -> None:
    [request] = adapter(protocol="mlflow").build(ROWS)
    assert request.path == "/invocations"
    assert request.body == {
        "dataframe_split": {
            "columns": ["a", "b", "ok", "tag"],
            "data": [[1, 2.5, True, "x"], [3, 0.5, False, "y"]],
        }
    }


def test_mlflow_reads_predictions() -> None:
    parsed = adapter(protocol="mlflow").parse([{"predictions": [0.1, 0.2]}], 2, url=URL)
    assert parsed.predictions == [0.1, 0.2]


def test_mlflow_reads_a_bare_list_as_mlflow_1_answered() -> None:
    assert adapter(protocol="mlflow").parse([[1, 0]], 2, url=URL).predictions == [1, 0]


def test_a_wrong_number_of_predictions_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match="expected 2 predictions, got 3"):
        adapter(protocol="mlflow").parse([{"predictions": [1, 2, 3]}], 2, url=URL)


def test_an_answer_without_predictions_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match="no 'predictions' field"):
        adapter(protocol="mlflow").parse([{"outputs": [1, 2]}], 2, url=URL)


def test_mlflow_readiness_is_ping() -> None:
    assert adapter(protocol="mlflow").ready_path == "/ping"


# --- Open Inference Protocol v2 ---------------------------------------------------------------


def test_v2_sends_one_typed_tensor_per_column_as_pandas_content() -> None:
    [request] = adapter(protocol="v2", model_name="m").build(ROWS, request_id="key-1")
    assert request.path == "/v2/models/m/infer"
    assert request.body["id"] == "key-1"
    assert request.body["parameters"] == {"content_type": "pd"}
    assert [(i["name"], i["shape"], i["datatype"]) for i in request.body["inputs"]] == [
        ("a", [2], "INT64"),
        ("b", [2], "FP64"),
        ("ok", [2], "BOOL"),
        ("tag", [2], "BYTES"),
    ]


def test_v2_can_send_one_two_dimensional_tensor() -> None:
    rows = [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    [request] = adapter(protocol="v2", model_name="m", v2_input_name="input-0").build(rows)
    assert request.body["inputs"] == [
        {"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [1.0, 2.0, 3.0, 4.0]}
    ]


def test_v2_paths_include_the_model_version() -> None:
    v2 = adapter(protocol="v2", model_name="m", model_version="3")
    assert v2.build(ROWS)[0].path == "/v2/models/m/versions/3/infer"
    assert v2.ready_path == "/v2/models/m/versions/3/ready"


def test_v2_readiness_falls_back_to_server_health_without_a_model() -> None:
    assert adapter(protocol="v2").ready_path == "/v2/health/ready"


def test_v2_needs_a_model_name_to_infer() -> None:
    with pytest.raises(ConfigurationError, match="model_name"):
        adapter(protocol="v2").build(ROWS)


def test_v2_reads_a_column_output_and_the_model_it_reports() -> None:
    answer = {
        "model_name": "m",
        "model_version": "7",
        "outputs": [{"name": "predict", "shape": [2, 1], "datatype": "FP64", "data": [0.5, 1.5]}],
    }
    parsed = adapter(protocol="v2", model_name="m").parse([answer], 2, url=URL)
    assert (parsed.predictions, parsed.model_name, parsed.model_version) == ([0.5, 1.5], "m", "7")


def test_v2_splits_a_flat_matrix_output_into_rows() -> None:
    output = {"name": "proba", "shape": [2, 2], "datatype": "FP64", "data": [0.1, 0.9, 0.8, 0.2]}
    parsed = adapter(protocol="v2", model_name="m").parse([{"outputs": [output]}], 2, url=URL)
    assert parsed.predictions == [[0.1, 0.9], [0.8, 0.2]]


def test_v2_picks_the_named_output() -> None:
    outputs = [
        {"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]},
        {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.9, 0.2]},
    ]
    v2 = adapter(protocol="v2", model_name="m", v2_output_name="score")
    assert v2.parse([{"outputs": outputs}], 2, url=URL).predictions == [0.9, 0.2]


def test_v2_output_of_the_wrong_number_of_rows_is_malformed() -> None:
    output = {"name": "p", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}
    with pytest.raises(MalformedResponseError, match="expected an output of 2 rows"):
        adapter(protocol="v2", model_name="m").parse([{"outputs": [output]}], 2, url=URL)


def test_v2_answer_without_outputs_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match="no 'outputs' list"):
        adapter(protocol="v2", model_name="m").parse([{"error": "boom"}], 2, url=URL)


# --- BentoML, plain JSON ----------------------------------------------------------------------


def test_bentoml_posts_records_to_the_api_and_reads_the_bare_result() -> None:
    bento = adapter(protocol="bentoml", api_name="classify", json_request_key="rows")
    [request] = bento.build(ROWS)
    assert (request.path, request.body) == ("/classify", {"rows": ROWS})
    assert bento.parse([["a", "b"]], 2, url=URL).predictions == ["a", "b"]
    assert bento.ready_path == "/readyz"


def test_json_follows_a_dotted_response_path() -> None:
    plain = adapter(protocol="json", json_request_key="items", json_response_path="out.0.scores")
    [request] = plain.build(ROWS)
    assert (request.path, request.body) == ("", {"items": ROWS})
    assert plain.parse([{"out": [{"scores": [1, 2]}]}], 2, url=URL).predictions == [1, 2]


def test_json_without_anything_at_the_response_path_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match="nothing at 'predictions'"):
        adapter(protocol="json").parse([{"result": []}], 2, url=URL)


def test_json_readiness_path_is_configurable() -> None:
    assert adapter(protocol="json").ready_path == "/"
    assert adapter(protocol="json", ready_path="/healthz").ready_path == "/healthz"


# --- OpenAI-compatible ------------------------------------------------------------------------


def test_openai_chat_sends_one_conversation_per_row() -> None:
    chat = adapter(
        protocol="openai",
        model_name="llm",
        prompt_column="tag",
        system_prompt="Classify.",
        openai_params={"temperature": 0},
    )
    requests = chat.build(ROWS)
    assert [r.path for r in requests] == ["/v1/chat/completions"] * 2
    assert requests[1].body == {
        "temperature": 0,
        "model": "llm",
        "messages": [
            {"role": "system", "content": "Classify."},
            {"role": "user", "content": "y"},
        ],
    }


def test_openai_chat_reads_each_message() -> None:
    answers = [
        {"model": "llm-7b", "choices": [{"message": {"role": "assistant", "content": c}}]}
        for c in ("yes", "no")
    ]
    parsed = adapter(protocol="openai", model_name="llm").parse(answers, 2, url=URL)
    assert (parsed.predictions, parsed.model_name) == (["yes", "no"], "llm-7b")


def test_openai_needs_a_prompt_column_when_rows_have_several() -> None:
    with pytest.raises(ConfigurationError, match="prompt_column"):
        adapter(protocol="openai", model_name="llm").build(ROWS)


def test_openai_embeddings_are_reordered_by_index() -> None:
    answer = {"data": [{"index": 1, "embedding": [0.2]}, {"index": 0, "embedding": [0.1]}]}
    embed = adapter(protocol="openai-embeddings", model_name="e", prompt_column="tag")
    assert embed.build(ROWS)[0].body == {"model": "e", "input": ["x", "y"]}
    assert embed.parse([answer], 2, url=URL).predictions == [[0.1], [0.2]]


def test_openai_embeddings_with_a_duplicate_index_are_malformed() -> None:
    answer = {"data": [{"index": 0, "embedding": [0.2]}, {"index": 0, "embedding": [0.1]}]}
    with pytest.raises(MalformedResponseError, match="each row exactly once"):
        adapter(protocol="openai-embeddings", model_name="e").parse([answer], 2, url=URL)


def test_openai_readiness_requires_the_model_to_be_served() -> None:
    chat = adapter(protocol="openai", model_name="llm")
    assert chat.ready_path == "/v1/models"
    assert chat.ready_problem(200, b'{"data": [{"id": "llm"}]}') is None
    assert "not among the 1 served" in str(chat.ready_problem(200, b'{"data": [{"id": "other"}]}'))


def test_malformed_messages_never_quote_the_answer() -> None:
    with pytest.raises(MalformedResponseError) as err:
        adapter(protocol="mlflow").parse([{"predictions": ["SECRET-VALUE"]}], 2, url=URL)
    assert "SECRET-VALUE" not in str(err.value)


# --- Round trips against the real server -------------------------------------------------------

NUMERIC = [{"a": 1, "b": 2.5}, {"a": 3, "b": 0.5}, {"a": -1, "b": 0.25}]
EXPECTED = [predict_row(r) for r in NUMERIC]


@pytest.mark.parametrize(
    "endpoint",
    [
        {"protocol": "mlflow"},
        {"protocol": "v2", "model_name": "model"},
        {"protocol": "v2", "model_name": "model", "v2_input_name": "input-0"},
        {"protocol": "bentoml", "api_name": "predict"},
    ],
    ids=["mlflow", "v2-columns", "v2-tensor", "bentoml"],
)
def test_tabular_protocols_round_trip(fault_server: FaultServer, endpoint: dict[str, Any]) -> None:
    with InferenceClient(EndpointConfig(url=fault_server.url, **endpoint)) as client:
        client.check_ready()
        assert client.predict_batch(NUMERIC).predictions == EXPECTED


def test_json_round_trip(fault_server: FaultServer) -> None:
    endpoint = EndpointConfig(
        url=f"{fault_server.url}/json", protocol="json", json_response_path="result.scores"
    )
    with InferenceClient(endpoint) as client:
        client.check_ready()
        assert client.predict_batch(NUMERIC).predictions == EXPECTED


def test_openai_chat_round_trip(fault_server: FaultServer) -> None:
    endpoint = EndpointConfig(url=fault_server.url, protocol="openai", model_name="model")
    with InferenceClient(endpoint) as client:
        client.check_ready()
        answer = client.predict_batch([{"text": "hello"}, {"text": "hi"}], idempotency_key="k")
    assert answer.predictions == ["chars:5", "chars:2"]
    assert [r.idempotency_key for r in fault_server.inference_requests] == ["k.0", "k.1"]


def test_openai_embeddings_round_trip(fault_server: FaultServer) -> None:
    endpoint = EndpointConfig(
        url=fault_server.url, protocol="openai-embeddings", model_name="model"
    )
    with InferenceClient(endpoint) as client:
        answer = client.predict_batch([{"text": "hello"}, {"text": "hi"}])
    assert answer.predictions == [[5.0, 1.0], [2.0, 1.0]]
    assert answer.model_name == "model"
