"""The clients: readiness probes, credentials, and answers that do not fit the batch."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from guardflow.errors import (
    ConfigurationError,
    EndpointNotReadyError,
    InferenceHTTPError,
    MalformedResponseError,
)
from guardflow.inference import AsyncInferenceClient, EndpointConfig, InferenceClient
from guardflow.testing.fault_server import Fault, FaultServer

ROWS = [{"a": 1, "b": 2.5}, {"a": 3, "b": 0.5}]


def mlflow(server: FaultServer, **fields: object) -> EndpointConfig:
    return EndpointConfig.model_validate({"url": server.url, **fields})


def test_the_probe_passes_when_the_server_is_ready(fault_server: FaultServer) -> None:
    with InferenceClient(mlflow(fault_server)) as client:
        client.check_ready()
    assert [r.path for r in fault_server.requests] == ["/ping"]


def test_the_probe_says_so_when_the_server_is_down(fault_server: FaultServer) -> None:
    fault_server.stop()
    with (
        InferenceClient(mlflow(fault_server)) as client,
        pytest.raises(EndpointNotReadyError) as err,
    ):
        client.check_ready()
    assert "is not reachable" in str(err.value)
    assert err.value.status_code is None
    assert err.value.retryable


def test_the_probe_says_so_when_the_model_is_not_loaded(fault_server: FaultServer) -> None:
    fault_server.ready = False
    endpoint = mlflow(fault_server, protocol="v2", model_name="model")
    with InferenceClient(endpoint) as client, pytest.raises(EndpointNotReadyError) as err:
        client.check_ready()
    assert err.value.status_code == 503
    assert "/v2/models/model/ready" in str(err.value)
    assert "not ready or not loaded" in str(err.value)


def test_the_probe_names_a_model_the_server_does_not_know(fault_server: FaultServer) -> None:
    endpoint = mlflow(fault_server, protocol="v2", model_name="typo")
    with InferenceClient(endpoint) as client, pytest.raises(EndpointNotReadyError) as err:
        client.check_ready()
    assert err.value.status_code == 404
    assert "model 'typo'" in str(err.value)


async def test_the_async_probe_reports_a_server_that_is_down(fault_server: FaultServer) -> None:
    fault_server.stop()
    async with AsyncInferenceClient(mlflow(fault_server)) as client:
        with pytest.raises(EndpointNotReadyError, match="is not reachable"):
            await client.check_ready()


def test_the_token_is_sent_as_a_bearer_header(fault_server: FaultServer) -> None:
    endpoint = mlflow(fault_server, token=SecretStr("tok-123"), headers={"X-Team": "risk"})
    with InferenceClient(endpoint) as client:
        client.predict_batch(ROWS)
    [request] = fault_server.inference_requests
    assert request.headers["authorization"] == "Bearer tok-123"
    assert request.headers["x-team"] == "risk"


def test_malformed_json_is_reported_without_retrying(fault_server: FaultServer) -> None:
    fault_server.add_faults(Fault.malformed_json())
    with (
        InferenceClient(mlflow(fault_server)) as client,
        pytest.raises(MalformedResponseError, match="not valid JSON"),
    ):
        client.predict_batch(ROWS)
    assert len(fault_server.inference_requests) == 1


def test_too_few_predictions_are_reported(fault_server: FaultServer) -> None:
    fault_server.add_faults(Fault.wrong_count(-1))
    with (
        InferenceClient(mlflow(fault_server)) as client,
        pytest.raises(MalformedResponseError, match="expected 2 predictions, got 1"),
    ):
        client.predict_batch(ROWS)


async def test_too_many_predictions_are_reported_by_the_async_client(
    fault_server: FaultServer,
) -> None:
    fault_server.add_faults(Fault.wrong_count(+2))
    async with AsyncInferenceClient(mlflow(fault_server)) as client:
        with pytest.raises(MalformedResponseError, match="expected 2 predictions, got 4"):
            await client.predict_batch(ROWS)


def test_an_empty_batch_is_refused(fault_server: FaultServer) -> None:
    with InferenceClient(mlflow(fault_server)) as client, pytest.raises(ConfigurationError):
        client.predict_batch([])


def test_the_answer_reports_model_latency_and_attempts(fault_server: FaultServer) -> None:
    endpoint = mlflow(fault_server, protocol="v2", model_name="model")
    with InferenceClient(endpoint) as client:
        answer = client.predict_batch(ROWS)
    assert (answer.model_name, answer.model_version, answer.attempts) == ("model", "1", 1)
    assert answer.latency_ms > 0


def test_the_token_never_appears_in_the_client_or_its_errors(fault_server: FaultServer) -> None:
    fault_server.add_faults(Fault.http(401))
    endpoint = mlflow(fault_server, token=SecretStr("tok-PLANTED"))
    with (
        InferenceClient(endpoint) as client,
        pytest.raises(InferenceHTTPError) as err,
    ):
        client.predict_batch(ROWS)
        assert "tok-PLANTED" not in repr(client.endpoint)
    assert "tok-PLANTED" not in str(err.value)
    assert "check endpoint.token" in str(err.value)
