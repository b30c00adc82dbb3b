"""InferenceHook maps a guardflow_inference connection onto guardflow's EndpointConfig/BatchPolicy.

Connections come through Airflow's real lookup (``AIRFLOW_CONN_<ID>`` environment variables).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import redact

from guardflow.errors import ConfigurationError
from guardflow.inference.config import Protocol
from guardflow_airflow.hooks.inference import InferenceHook


def _set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: dict[str, Any] | str) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", text)


def _hook(monkeypatch: pytest.MonkeyPatch, **conn: Any) -> InferenceHook:
    conn_id = f"gf_{uuid.uuid4().hex[:8]}"
    _set_conn(monkeypatch, conn_id, {"conn_type": "guardflow_inference", **conn})
    return InferenceHook(guardflow_conn_id=conn_id)


def test_hook_defaults_to_the_default_connection_id() -> None:
    assert InferenceHook().guardflow_conn_id == "guardflow_inference_default"


def test_building_a_hook_reads_no_connection() -> None:
    hook = InferenceHook(guardflow_conn_id="gf_not_defined_anywhere")

    with pytest.raises(AirflowNotFoundException):
        hook.get_endpoint_config()


def test_host_with_scheme_is_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, host="http://127.0.0.1:5001/")

    assert hook.get_endpoint_config().url == "http://127.0.0.1:5001"


def test_bare_host_takes_scheme_and_port_from_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = _hook(monkeypatch, host="models.internal", port=8443, schema="https")

    assert hook.get_endpoint_config().url == "https://models.internal:8443"


def test_host_url_keeps_its_path_and_gains_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, host="https://gateway.internal/serving/fraud", port=9000)

    assert hook.get_endpoint_config().url == "https://gateway.internal:9000/serving/fraud"


def test_connection_uri_form_maps_extra_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = "gf_uri_form"
    uri = "guardflow-inference://models.internal:8080/?protocol=v2&model_name=fraud&batch_size=25"
    _set_conn(monkeypatch, conn_id, uri)
    hook = InferenceHook(guardflow_conn_id=conn_id)

    endpoint = hook.get_endpoint_config()

    assert endpoint.url == "http://models.internal:8080"
    assert endpoint.protocol is Protocol.V2
    assert endpoint.model_name == "fraud"
    assert hook.get_batch_policy().batch_size == 25


def test_form_fields_map_onto_endpoint_and_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "protocol": "openai",
        "model_name": "llama",
        "model_version": "3",
        "batch_size": 16,
        "concurrency": 2,
        "requests_per_second": 5.5,
        "connect_timeout": 1.5,
        "read_timeout": 90,
        "write_timeout": 10,
        "ca_bundle": "/etc/ssl/internal.pem",
        "headers": {"X-Team": "risk"},
        "prompt_column": "text",
    }
    hook = _hook(monkeypatch, host="https://llm.internal", extra=extra)

    endpoint = hook.get_endpoint_config()
    batching = hook.get_batch_policy()

    assert endpoint.protocol is Protocol.OPENAI
    assert (endpoint.model_name, endpoint.model_version) == ("llama", "3")
    assert (endpoint.timeouts.connect, endpoint.timeouts.read, endpoint.timeouts.write) == (
        1.5,
        90.0,
        10.0,
    )
    assert endpoint.verify == "/etc/ssl/internal.pem"
    assert endpoint.headers == {"X-Team": "risk"}
    assert endpoint.prompt_column == "text"
    assert (batching.batch_size, batching.concurrency, batching.requests_per_second) == (
        16,
        2,
        5.5,
    )


def test_unset_fields_fall_back_to_guardflow_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, host="http://127.0.0.1:5001", extra={"model_name": ""})

    endpoint = hook.get_endpoint_config()

    assert endpoint.protocol is Protocol.MLFLOW
    assert endpoint.model_name is None
    assert endpoint.token is None
    assert hook.get_batch_policy().batch_size == 100


def test_legacy_prefixed_extra_keys_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "extra__guardflow_inference__protocol": "bentoml",
        "extra__guardflow_inference__api_name": "score",
    }
    hook = _hook(monkeypatch, host="http://127.0.0.1:3000", extra=extra)

    endpoint = hook.get_endpoint_config()

    assert (endpoint.protocol, endpoint.api_name) == (Protocol.BENTOML, "score")


def test_verify_tls_accepts_text_false(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, host="https://self-signed.internal", extra={"verify_tls": "false"})

    assert hook.get_endpoint_config().verify is False


def test_token_comes_from_the_password_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"gf-token-{uuid.uuid4().hex}"
    hook = _hook(monkeypatch, host="http://127.0.0.1:5001", password=token)

    endpoint = hook.get_endpoint_config()

    assert endpoint.token is not None
    assert endpoint.token.get_secret_value() == token
    assert token not in repr(endpoint)


def test_token_is_registered_with_the_secrets_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"gf-token-{uuid.uuid4().hex}"
    hook = _hook(monkeypatch, host="http://127.0.0.1:5001", password=token)

    hook.get_endpoint_config()

    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer ***"


def test_operator_overrides_win_over_connection_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(
        monkeypatch, host="http://127.0.0.1:5001", extra={"batch_size": 50, "concurrency": 3}
    )

    config = hook.get_inference_config(
        batching_options={"batch_size": 7, "concurrency": None}, key_column="id"
    )

    assert (config.batching.batch_size, config.batching.concurrency) == (7, 3)
    assert config.key_column == "id"


def test_unknown_protocol_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, host="http://127.0.0.1:5001", extra={"protocol": "grpc"})

    with pytest.raises(ConfigurationError) as info:
        hook.get_endpoint_config()

    message = str(info.value)
    assert hook.guardflow_conn_id in message
    assert "'grpc' is not supported" in message
    assert "mlflow, v2, bentoml, openai, openai-embeddings, json" in message
    assert info.value.retryable is False


def test_missing_host_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, extra={"protocol": "mlflow"})

    with pytest.raises(ConfigurationError, match="host is empty"):
        hook.get_endpoint_config()


def test_credentials_in_the_host_are_refused_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = _hook(monkeypatch, host="https://svc:hunter2-secret@models.internal")

    with pytest.raises(ConfigurationError) as info:
        hook.get_endpoint_config()

    assert "password" in str(info.value)
    assert "hunter2-secret" not in str(info.value)


def test_invalid_batch_size_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, host="http://127.0.0.1:5001", extra={"batch_size": 0})

    with pytest.raises(ConfigurationError, match="batch_size"):
        hook.get_batch_policy()


def test_test_connection_reports_a_ready_server(
    monkeypatch: pytest.MonkeyPatch, mlflow_model_server: Any
) -> None:
    hook = _hook(monkeypatch, host=mlflow_model_server.url, extra={"protocol": "mlflow"})

    ok, message = hook.test_connection()

    assert ok, message


def test_test_connection_reports_an_unreachable_server(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    hook = _hook(monkeypatch, host=f"http://127.0.0.1:{unused_tcp_port}")

    ok, message = hook.test_connection()

    assert not ok
    assert message
