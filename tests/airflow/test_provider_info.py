"""The provider metadata is what Airflow expects, and Airflow discovers the provider from it."""

from __future__ import annotations

import json
from importlib.metadata import distribution, entry_points
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from guardflow_airflow.get_provider_info import PROTOCOLS, get_provider_info

CONN_TYPE = "guardflow_inference"
HOOK_CLASS = "guardflow_airflow.hooks.inference.InferenceHook"


def _airflow_schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(files("airflow").joinpath(name).read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_provider_info_validates_against_airflows_schema() -> None:
    jsonschema.validate(get_provider_info(), _airflow_schema("provider_info.schema.json"))


def test_connection_types_validate_against_the_provider_yaml_schema() -> None:
    # provider_info.schema.json leaves conn-fields and ui-field-behaviour open; provider.yaml's
    # schema spells them out (kebab-case keys, field schemas), so check against that one too.
    schema = _airflow_schema("provider.yaml.schema.json")["properties"]["connection-types"]

    jsonschema.validate(get_provider_info()["connection-types"], schema)


def test_package_name_is_the_distribution_name() -> None:
    dist = distribution("airflow-provider-guardflow")

    assert get_provider_info()["package-name"] == dist.metadata["Name"]


def test_entry_point_points_at_get_provider_info() -> None:
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.dist is not None and ep.dist.name == "airflow-provider-guardflow"
    ]

    assert ep.load() is get_provider_info


def test_protocol_choices_are_the_cores_protocols() -> None:
    from guardflow.inference.config import Protocol

    assert sorted(PROTOCOLS) == sorted(p.value for p in Protocol)


def test_connection_form_declares_inference_fields() -> None:
    (conn,) = [
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == CONN_TYPE
    ]
    fields = conn["conn-fields"]

    assert fields["protocol"]["schema"]["enum"] == PROTOCOLS
    expected = {"model_name", "model_version", "batch_size", "concurrency", "connect_timeout"}
    assert expected | {"read_timeout"} <= set(fields)
    assert conn["ui-field-behaviour"]["relabeling"]["password"] == "Token"


def test_providers_manager_lists_the_provider(providers_manager: Any) -> None:
    info = providers_manager.providers["airflow-provider-guardflow"]

    assert info.version == distribution("airflow-provider-guardflow").version


def test_task_runtime_resolves_the_connection_type_to_the_hook() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks[CONN_TYPE]

    assert hook is not None
    assert hook.hook_class_name == HOOK_CLASS
    assert hook.connection_id_attribute_name == "guardflow_conn_id"
    assert hook.package_name == "airflow-provider-guardflow"


def test_providers_manager_loads_the_connection_form(providers_manager: Any) -> None:
    widgets = providers_manager.connection_form_widgets
    behaviour = providers_manager.field_behaviours[CONN_TYPE]

    assert widgets[f"extra__{CONN_TYPE}__protocol"].field["schema"]["enum"] == PROTOCOLS
    assert widgets[f"extra__{CONN_TYPE}__batch_size"].field["value"] == 100
    assert behaviour["hidden_fields"] == ["login"]
    assert behaviour["relabeling"]["password"] == "Token"
