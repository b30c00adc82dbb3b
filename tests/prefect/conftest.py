"""Prefect tests run against one real, temporary Prefect server per session.

Prefect reads its settings when it is first imported, so the environment is set here, before any
test module imports it: no analytics (there is no network), and a private PREFECT_HOME so that
result storage and the audit log of this session are empty folders a test can inspect.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="guardflow-prefect-tests-"))
for _name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILES_PATH"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "PREFECT_HOME": str(_HOME / "prefect"),
        "PREFECT_LOCAL_STORAGE_PATH": str(_HOME / "prefect" / "storage"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_ENABLED": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "DO_NOT_TRACK": "1",
        "GUARDFLOW_AUDIT_PATH": str(_HOME / "audit.jsonl"),
    }
)


@dataclass(frozen=True)
class PrefectServer:
    """The session's Prefect server.

    Args:
        api_url: Its API URL (what ``PREFECT_API_URL`` points at inside the harness).
        block_types_at_start: Block type slugs the server knew before any test ran: the ones it
            registered itself from the ``prefect.collections`` entry points.
        result_storage: Where Prefect would persist task results.
        audit_path: The JSON Lines audit log guardflow steps write to in this session.
    """

    api_url: str
    block_types_at_start: frozenset[str]
    result_storage: Path
    audit_path: Path


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[PrefectServer]:
    """Start ``prefect_test_harness()`` once for the session and describe the server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        with get_client(sync_client=True) as client:
            slugs = frozenset(bt.slug for bt in client.read_block_types())
        yield PrefectServer(
            api_url=str(PREFECT_API_URL.value()),
            block_types_at_start=slugs,
            result_storage=Path(os.environ["PREFECT_LOCAL_STORAGE_PATH"]),
            audit_path=Path(os.environ["GUARDFLOW_AUDIT_PATH"]),
        )
