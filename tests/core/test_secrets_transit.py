"""Transit in bulk on a real OpenBao: batches of 200, concurrency, duplicates, convergent keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from guardflow.errors import TransitError
from guardflow.secrets import SecretCache, VaultClient
from guardflow.secrets.transit import MAX_BATCH
from guardflow.testing.vault_server import VaultServer, assert_secret_absent


@pytest.fixture
def vault(vault_config: Any) -> Iterator[VaultClient]:
    with VaultClient(vault_config, cache=SecretCache()) as client:
        client.hvac  # log in and start the token lookup before counting requests  # noqa: B018
        yield client


def _key_name() -> str:
    return f"k-{secrets.token_hex(4)}"


def _count(vault: VaultClient, action: Any) -> tuple[Any, int]:
    """Run ``action`` and count the transit requests it sent (the token job may add one)."""
    before = vault.requests_sent
    result = action()
    return result, vault.requests_sent - before


def test_ten_thousand_values_round_trip_in_order(vault: VaultClient) -> None:
    key = vault.transit(_key_name())
    key.ensure_key()
    values = [f"user-{i}@example.com" for i in range(10_000)]
    tokens = key.encrypt_many(values)
    assert len(tokens) == 10_000
    assert all(t.startswith("vault:v1:") for t in tokens)
    assert key.decrypt_many(tokens) == values


def test_batches_are_cut_at_200_whatever_batch_size_asks(vault: VaultClient) -> None:
    key = vault.transit(_key_name())
    key.ensure_key()
    values = [f"v{i}" for i in range(1_000)]
    tokens, sent = _count(vault, lambda: key.encrypt_many(values, batch_size=1_000))
    assert sent in (1_000 // MAX_BATCH, 1_000 // MAX_BATCH + 1)  # +1: the token lookup job
    assert key.decrypt_many(tokens) == values


def test_duplicates_are_sent_once(vault: VaultClient) -> None:
    key = vault.transit(_key_name())  # not convergent: equal ciphertexts prove one encryption
    key.ensure_key()
    values = ["alice", "bob", "alice", "carol", "bob"] * 200
    tokens, sent = _count(vault, lambda: key.encrypt_many(values))
    assert len(set(tokens)) == 3
    assert tokens[0] == tokens[2] and tokens[1] == tokens[4]
    assert sent <= 2  # one batch of 3 items (+ maybe the token lookup job)
    assert key.decrypt_many(tokens) == values


def test_plain_key_is_not_deterministic_across_calls(vault: VaultClient) -> None:
    key = vault.transit(_key_name())
    key.ensure_key()
    assert key.encrypt("alice") != key.encrypt("alice")


def test_convergent_key_gives_the_same_token_for_the_same_value(
    vault_server: VaultServer, vault: VaultClient
) -> None:
    name = _key_name()
    key = vault.transit(name, convergent=True)
    key.ensure_key()
    config = vault_server.request("GET", f"transit/keys/{name}")["data"]
    assert config["derived"] and config["convergent_encryption"]
    first = key.encrypt_many(["alice", "bob"])
    again = vault.transit(name, convergent=True).encrypt_many(["bob", "alice"])
    assert first == [again[1], again[0]]
    assert key.decrypt_many(first) == ["alice", "bob"]


def test_convergent_tokens_depend_on_the_context(vault: VaultClient) -> None:
    key = vault.transit(_key_name(), convergent=True)
    key.ensure_key()
    a = key.encrypt("alice", context="tenant-a")
    b = key.encrypt("alice", context="tenant-b")
    assert a != b
    assert key.encrypt("alice", context="tenant-a") == a
    assert key.decrypt(a, context="tenant-a") == "alice"


def test_convergent_round_trip_of_ten_thousand_values_is_deterministic(vault: VaultClient) -> None:
    key = vault.transit(_key_name(), convergent=True)
    key.ensure_key()
    values = [f"ssn-{i:06d}" for i in range(10_000)]
    tokens = key.encrypt_many(values, concurrency=4)
    assert key.encrypt_many(values, concurrency=2) == tokens
    assert key.decrypt_many(tokens) == values


def test_concurrent_batches_use_one_session_per_thread(vault: VaultClient) -> None:
    key = vault.transit(_key_name())
    key.ensure_key()
    key.encrypt_many([str(i) for i in range(2_000)], concurrency=4)
    assert len(vault._conn._sessions) >= 2


def test_bytes_are_accepted(vault: VaultClient) -> None:
    key = vault.transit(_key_name())
    key.ensure_key()
    assert key.decrypt(key.encrypt(b"\xc3\xa9t\xc3\xa9")) == "été"


def test_ensure_key_refuses_a_plain_key_as_convergent(vault: VaultClient) -> None:
    name = _key_name()
    vault.transit(name).ensure_key()
    with pytest.raises(TransitError, match="not convergent"):
        vault.transit(name, convergent=True).ensure_key()


def test_wrong_context_fails_without_quoting_values(
    vault: VaultClient, caplog: pytest.LogCaptureFixture
) -> None:
    planted = f"planted-{secrets.token_hex(8)}"
    key = vault.transit(_key_name(), convergent=True)
    key.ensure_key()
    token = key.encrypt(planted, context="right")
    with pytest.raises(TransitError, match="decrypt") as info:
        key.decrypt(token, context="wrong")
    assert_secret_absent(planted, str(info.value), caplog.text)
    assert_secret_absent(token, str(info.value))


def test_decrypt_with_a_missing_key_is_a_transit_error(vault: VaultClient) -> None:
    with pytest.raises(TransitError) as info:
        vault.transit(_key_name()).decrypt("vault:v1:AAAA")
    assert info.value.mount == "transit"
