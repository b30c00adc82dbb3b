"""Blocks: Prefect's standard block checks, registration, secrets, mapping onto guardflow config."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import pkgutil
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr, ValidationError

import prefect_guardflow
from guardflow.errors import ConfigurationError
from guardflow.inference.config import EndpointConfig, InferenceConfig, Protocol, Timeouts
from prefect_guardflow.inference import InferenceEndpoint

if TYPE_CHECKING:
    from conftest import PrefectServer

PLANTED = "planted-secret-7f3a9c"


def _package_blocks() -> list[type[Block]]:
    """Every Block subclass in prefect_guardflow: new blocks join these checks by themselves."""
    found: dict[str, type[Block]] = {}
    for info in pkgutil.walk_packages(prefect_guardflow.__path__, "prefect_guardflow."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Block) and obj.__module__ == module.__name__:
                found[obj.get_block_type_slug()] = obj
    return [found[slug] for slug in sorted(found)]


BLOCKS = _package_blocks()


def test_package_defines_the_inference_endpoint_block() -> None:
    assert InferenceEndpoint in BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.__name__)
class TestStandardBlockSuite(BlockStandardTestSuite):
    """Prefect's own checks for integration blocks, over every block of the package."""

    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # Prefect's version downloads the logo; this machine has no network, so check what can be
        # checked offline: a logo is declared, over https, as an image file.
        assert block._logo_url is not None
        assert str(block._logo_url).startswith("https://")
        assert str(block._logo_url).endswith((".png", ".svg", ".jpg"))


def test_block_slug_is_the_released_one() -> None:
    # Saved blocks reference their type by slug: changing it after a release orphans them.
    assert InferenceEndpoint.get_block_type_slug() == "guardflow-inference-endpoint"
    assert InferenceEndpoint.get_block_type_name() == "Guardflow Inference Endpoint"


def test_collections_entry_point_names_the_package() -> None:
    entry_points = importlib.metadata.entry_points(group="prefect.collections")
    assert {ep.name: ep.value for ep in entry_points}.get("prefect_guardflow") == (
        "prefect_guardflow"
    )


def test_server_registered_the_block_type_from_the_entry_point(
    prefect_server: PrefectServer,
) -> None:
    # Recorded right after the server started, before any test could register anything.
    assert "guardflow-inference-endpoint" in prefect_server.block_types_at_start


def test_prefect_block_register_cli_registers_the_block(prefect_server: PrefectServer) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    prefect_cli = os.path.join(os.path.dirname(sys.executable), "prefect")
    done = subprocess.run(
        [prefect_cli, "block", "register", "-m", "prefect_guardflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Successfully registered {len(BLOCKS)} block" in done.stdout
    listed = subprocess.run(
        [prefect_cli, "block", "type", "ls"], env=env, capture_output=True, text=True, timeout=120
    )
    assert "guardflow-inference-endpoint" in listed.stdout


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, prefect_guardflow; "
        "print(','.join(m for m in ('pandas', 'polars', 'pyarrow', 'numpy', 'mlflow', 'sklearn')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == ""


def test_saved_block_keeps_the_token_secret_and_loads_it_back() -> None:
    name = f"endpoint-{uuid.uuid4().hex[:8]}"
    InferenceEndpoint(
        url="http://127.0.0.1:5001", token=SecretStr(PLANTED), headers={"X-Api-Key": PLANTED}
    ).save(name)

    with get_client(sync_client=True) as client:
        stored = client.read_block_document_by_name(
            name, block_type_slug="guardflow-inference-endpoint", include_secrets=False
        )
    assert PLANTED not in str(stored.data)

    loaded = InferenceEndpoint.load(name)
    assert loaded.token is not None
    assert loaded.token.get_secret_value() == PLANTED
    assert loaded.headers is not None
    assert loaded.headers.get_secret_value() == {"X-Api-Key": PLANTED}
    assert PLANTED not in repr(loaded)


def test_protocol_survives_a_save_and_load() -> None:
    name = f"endpoint-{uuid.uuid4().hex[:8]}"
    InferenceEndpoint(url="http://127.0.0.1:8080", protocol=Protocol.V2, model_name="m").save(name)
    assert InferenceEndpoint.load(name).protocol is Protocol.V2


def test_to_config_maps_every_endpoint_field() -> None:
    block = InferenceEndpoint(
        url="http://127.0.0.1:8080/",
        protocol="v2",
        model_name="tiny-model",
        model_version="3",
        token=SecretStr(PLANTED),
        headers={"X-Tenant": "a"},
        batch_size=7,
        concurrency=3,
        requests_per_second=12.5,
        max_attempts=2,
        connect_timeout=1.5,
        read_timeout=2.5,
        write_timeout=3.5,
        pool_timeout=4.5,
        ready_path="/health",
        v2_input_name="input-0",
        v2_output_name="output-0",
    )

    config = block.to_config(key_column="id", input_columns=["f0"], max_failed_fraction=0.01)

    assert isinstance(config, InferenceConfig)
    ep = config.endpoint
    assert (ep.url, ep.protocol, ep.model_name, ep.model_version) == (
        "http://127.0.0.1:8080",
        Protocol.V2,
        "tiny-model",
        "3",
    )
    assert ep.token is not None and ep.token.get_secret_value() == PLANTED
    assert ep.headers == {"X-Tenant": "a"}
    assert (ep.timeouts.connect, ep.timeouts.read, ep.timeouts.write, ep.timeouts.pool) == (
        1.5,
        2.5,
        3.5,
        4.5,
    )
    assert (ep.ready_path, ep.v2_input_name, ep.v2_output_name) == (
        "/health",
        "input-0",
        "output-0",
    )
    assert (config.batching.batch_size, config.batching.concurrency) == (7, 3)
    assert config.batching.requests_per_second == 12.5
    assert config.retry.max_attempts == 2
    assert (config.key_column, config.input_columns) == ("id", ["f0"])
    assert config.failure.max_failed_fraction == 0.01


def test_block_covers_every_endpoint_field_of_the_core() -> None:
    # Timeouts are flattened into <phase>_timeout fields; everything else keeps its core name.
    flattened = {f"{phase}_timeout" for phase in Timeouts.model_fields}
    expected = (set(EndpointConfig.model_fields) - {"timeouts"}) | flattened
    assert expected <= set(InferenceEndpoint.model_fields)


def test_block_defaults_match_the_core_defaults() -> None:
    config = InferenceEndpoint(url="http://127.0.0.1:5001").to_config()
    core = InferenceConfig(endpoint={"url": "http://127.0.0.1:5001"})
    assert config == core


def test_invalid_url_is_refused_without_echoing_the_value() -> None:
    with pytest.raises(ValidationError) as info:
        InferenceEndpoint(url=f"ftp://user:{PLANTED}@example.invalid")

    assert "must start with http:// or https://" in str(info.value)
    assert PLANTED not in str(info.value)


def test_invalid_step_option_is_a_configuration_error_naming_the_field() -> None:
    block = InferenceEndpoint(url="http://127.0.0.1:5001", token=SecretStr(PLANTED))

    with pytest.raises(ConfigurationError, match="max_failed_fraction") as info:
        block.to_config(max_failed_fraction=2.0)

    assert PLANTED not in str(info.value)


def test_out_of_range_field_is_refused_when_the_block_is_built() -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        InferenceEndpoint(url="http://127.0.0.1:5001", batch_size=0)
