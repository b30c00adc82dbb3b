"""SecretCache: single flight across threads, TTLs from leases, counted by OpenBao's audit log.

Requests are counted on the server side: a file audit device records every request OpenBao
receives, so "one request" means one request reached the server.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from guardflow.errors import SecretNotFoundError
from guardflow.secrets import SecretCache, SecretValue, TokenAuth, VaultClient, default_cache
from guardflow.testing.vault_server import VaultServer, assert_secret_absent


@pytest.fixture(scope="module")
def audited() -> Iterator[VaultServer]:
    with VaultServer(audit=True) as server:
        yield server


class AuditLog:
    """Counts requests OpenBao's file audit device recorded since the test started."""

    def __init__(self, server: VaultServer) -> None:
        self.server = server
        self.path = server.audit_path

    def requests_to(self, api_path: str) -> int:
        """Reads of ``api_path`` (the test's own setup writes are not counted)."""
        return sum(
            1 for r in self.server.audited_requests(api_path) if r.get("operation") == "read"
        )


@pytest.fixture
def audit(audited: VaultServer) -> AuditLog:
    return AuditLog(audited)


@pytest.fixture
def vault_config(audited: VaultServer) -> Any:
    token = audited.create_token(["root"])
    return audited.config(TokenAuth.model_validate({"token": token}))


@pytest.fixture
def vault(vault_config: Any) -> Iterator[VaultClient]:
    with VaultClient(vault_config.model_copy(update={"kv_version": 2}), cache=SecretCache()) as c:
        yield c


def _path() -> str:
    return f"cache/{secrets.token_hex(4)}"


def test_a_hundred_threads_reading_one_path_send_one_request(
    audited: VaultServer, vault: VaultClient, audit: AuditLog
) -> None:
    path = _path()
    planted = f"planted-{secrets.token_hex(8)}"
    audited.request("POST", f"secret/data/{path}", json={"data": {"k": planted}})
    barrier = threading.Barrier(100)

    def read(_: int) -> SecretValue:
        barrier.wait()
        return vault.read_key(path, "k")

    with ThreadPoolExecutor(max_workers=100) as pool:
        values = list(pool.map(read, range(100)))
    assert {v.reveal() for v in values} == {planted}
    assert audit.requests_to(f"secret/data/{path}") == 1
    assert vault.cache.stats.loads == 1
    assert audit.path is not None
    assert_secret_absent(planted, audit.path.read_text())  # audit hashes values


def test_errors_reach_every_waiting_thread_from_one_request(
    vault: VaultClient, audit: AuditLog
) -> None:
    path = _path()
    barrier = threading.Barrier(20)

    def read(_: int) -> str:
        barrier.wait()
        try:
            vault.read(path)
        except SecretNotFoundError as exc:
            return type(exc).__name__
        return "read"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(read, range(20)))
    assert outcomes == ["SecretNotFoundError"] * 20
    assert audit.requests_to(f"secret/data/{path}") == 1


def test_errors_are_not_cached(audited: VaultServer, vault: VaultClient) -> None:
    path = _path()
    with pytest.raises(SecretNotFoundError):
        vault.read(path)
    audited.request("POST", f"secret/data/{path}", json={"data": {"k": "now"}})
    assert vault.read_key(path, "k").reveal() == "now"


def test_kv_ttl_bounds_the_cache_entry(
    audited: VaultServer, vault: VaultClient, audit: AuditLog
) -> None:
    path = _path()
    audited.request("POST", f"kv1/{path}", json={"k": "v", "ttl": "1s"})
    vault.read(path, mount="kv1", kv_version=1)
    vault.read(path, mount="kv1", kv_version=1)
    assert audit.requests_to(f"kv1/{path}") == 1
    key = (*vault.config.cache_scope(), "kv1", path, None)
    deadline = time.monotonic() + 10
    while vault.cache.get(key) is not None:  # expiry is the clock's business; poll the entry
        assert time.monotonic() < deadline
        time.sleep(0.05)
    vault.read(path, mount="kv1", kv_version=1)
    assert audit.requests_to(f"kv1/{path}") == 2


def test_zero_cache_ttl_disables_caching(
    audited: VaultServer, vault_config: Any, audit: AuditLog
) -> None:
    path = _path()
    audited.request("POST", f"secret/data/{path}", json={"data": {"k": "v"}})
    config = vault_config.model_copy(update={"kv_version": 2, "cache_ttl": 0.0})
    with VaultClient(config, cache=SecretCache()) as vault:
        vault.read(path)
        vault.read(path)
    assert audit.requests_to(f"secret/data/{path}") == 2


def test_use_cache_false_always_asks_the_server(
    audited: VaultServer, vault: VaultClient, audit: AuditLog
) -> None:
    path = _path()
    audited.request("POST", f"secret/data/{path}", json={"data": {"k": "v"}})
    vault.read(path)
    vault.read(path, use_cache=False)
    assert audit.requests_to(f"secret/data/{path}") == 2


def test_different_identities_do_not_share_entries(audited: VaultServer, audit: AuditLog) -> None:
    path = _path()
    audited.request("POST", f"secret/data/{path}", json={"data": {"k": "v"}})
    cache = SecretCache()
    for _ in range(2):
        token = audited.create_token(["root"])
        config = audited.config(TokenAuth.model_validate({"token": token}), kv_version=2)
        with VaultClient(config, cache=cache) as vault:
            vault.read(path)
    assert audit.requests_to(f"secret/data/{path}") == 2


def test_versions_are_cached_apart(vault: VaultClient) -> None:
    path = _path()
    vault.write(path, {"k": "one"})
    vault.write(path, {"k": "two"})
    assert vault.read_key(path, "k", version=1).reveal() == "one"
    assert vault.read_key(path, "k").reveal() == "two"


def test_invalidate_drops_matching_entries() -> None:
    cache = SecretCache()
    cache.put(("u", "", "id", "secret", "a", None), "A")
    cache.put(("u", "", "id", "secret", "a", 1), "A1")
    cache.put(("u", "", "id", "secret", "b", None), "B")
    assert cache.invalidate(mount="secret", path="a") == 2
    assert len(cache) == 1
    cache.clear()
    assert len(cache) == 0


def test_least_recently_used_entries_go_first() -> None:
    cache = SecretCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1


def test_default_cache_is_one_per_process() -> None:
    assert default_cache() is default_cache()
