"""Tokenize and detokenize through a real OpenBao transit convergent key; hash keys from Vault."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.errors import VaultPermissionError
from guardflow.pii import Detector, PIIPolicy, detokenize, mask_records, mask_table
from guardflow.pii.actions import TOKEN_PATTERN
from guardflow.secrets import SecretCache, TokenAuth, VaultClient
from guardflow.testing.vault_server import VaultServer, assert_secret_absent

EMAIL = "token.planted@example.org"
SSN = "536-22-8126"


@pytest.fixture
def vault(vault_config: Any) -> Iterator[VaultClient]:
    with VaultClient(vault_config, cache=SecretCache()) as client:
        yield client


def _policy(key: str, **extra: Any) -> PIIPolicy:
    return PIIPolicy.model_validate(
        {"transit_key": key, "columns": {"v": {"entity": "EMAIL_ADDRESS", "action": "tokenize"}}}
        | extra
    )


@pytest.fixture
def key_name() -> str:
    return f"pii-{secrets.token_hex(4)}"


def test_tokens_are_deterministic_recognisable_and_still_join(
    vault: VaultClient, key_name: str
) -> None:
    policy = _policy(key_name)
    left, _ = mask_table(
        pa.table({"v": [EMAIL, "b@example.org"], "x": [1, 2]}), policy, vault=vault
    )
    right, _ = mask_table(
        pa.table({"v": ["b@example.org", EMAIL], "y": [20, 10]}), policy, vault=vault
    )
    tokens = left.column("v").to_pylist()
    assert all(TOKEN_PATTERN.fullmatch(t) for t in tokens)
    assert tokens[0] != tokens[1]
    assert left.join(right, "v").sort_by("x").column("y").to_pylist() == [10, 20]
    assert_secret_absent(EMAIL, tokens)


def test_detokenize_round_trips_tokens_and_text(vault: VaultClient, key_name: str) -> None:
    policy = _policy(key_name, free_text_columns=["notes"], default_action="tokenize")
    rows, _ = mask_records(
        [{"v": EMAIL, "notes": f"write to {EMAIL}, ssn {SSN}"}, {"v": None, "notes": None}],
        policy,
        vault=vault,
    )
    assert rows[1] == {"v": None, "notes": None}
    assert detokenize([rows[0]["v"], None], policy, vault=vault) == [EMAIL, None]
    assert detokenize([rows[0]["notes"]], policy, vault=vault) == [f"write to {EMAIL}, ssn {SSN}"]


def test_tokenized_text_rescanned_holds_no_pii(vault: VaultClient, key_name: str) -> None:
    policy = _policy(key_name, free_text_columns=["notes"], default_action="tokenize")
    texts = [f"mail {EMAIL} or {i}.{EMAIL}, ssn {SSN}" for i in range(50)]
    table, report = mask_table(pa.table({"notes": texts}), policy, vault=vault)
    masked = table.column("notes").to_pylist()
    assert Detector(policy.detected_types()).detect_many(masked) == [[] for _ in masked]
    assert report.counts == {"notes": {"EMAIL_ADDRESS": 100, "US_SSN": 50}}


def test_a_column_is_tokenized_in_batches_each_distinct_value_once(
    vault: VaultClient, key_name: str
) -> None:
    policy = _policy(key_name)
    mask_records([{"v": "warm@example.org"}], policy, vault=vault)  # creates the key
    values = [f"u{i % 10}@example.org" for i in range(1000)]
    before = vault.requests_sent
    table, _ = mask_table(pa.table({"v": values}), policy, vault=vault)
    # One key lookup and one encrypt batch (10 distinct values), not 1000 requests.
    assert vault.requests_sent - before <= 3
    assert len(set(table.column("v").to_pylist())) == 10


def test_caller_without_decrypt_permission_is_refused(
    vault: VaultClient, vault_server: VaultServer, key_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    policy = _policy(key_name)
    rows, _ = mask_records([{"v": EMAIL}], policy, vault=vault)
    vault_server.write_policy(
        f"{key_name}-encrypt-only",
        f'path "transit/encrypt/{key_name}" {{ capabilities = ["update"] }}\n'
        f'path "transit/keys/{key_name}" {{ capabilities = ["read"] }}\n',
    )
    token = vault_server.create_token([f"{key_name}-encrypt-only"])
    config = vault_server.config(TokenAuth.model_validate({"token": token}))
    caplog.set_level(logging.DEBUG)
    with VaultClient(config, cache=SecretCache()) as limited:
        # The limited caller may still tokenize (same token as the root caller)...
        again, _ = mask_records([{"v": EMAIL}], policy, vault=limited)
        assert again == rows
        # ...but not turn tokens back into values.
        with pytest.raises(VaultPermissionError) as info:
            detokenize([rows[0]["v"]], policy, vault=limited)
    assert f"transit/decrypt/{key_name}" in str(info.value)
    assert_secret_absent(EMAIL, str(info.value), repr(info.value), caplog.text)
    assert_secret_absent(rows[0]["v"], str(info.value), caplog.text)


def test_hash_key_from_vault(
    vault: VaultClient, key_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    hash_key = secrets.token_hex(16)
    vault.write(f"pii/{key_name}", {"hmac": hash_key})
    policy = PIIPolicy.model_validate(
        {
            "hash_key_ref": f"vault://secret/pii/{key_name}#hmac",
            "columns": {"v": {"entity": "EMAIL_ADDRESS", "action": "hash"}},
        }
    )
    sink = MemoryAuditSink()
    caplog.set_level(logging.DEBUG)
    table, report = mask_table(pa.table({"v": [EMAIL]}), policy, vault=vault, audit_sink=sink)
    expected = hmac.new(hash_key.encode(), EMAIL.encode(), hashlib.sha256).hexdigest()
    assert table.column("v").to_pylist() == [expected]
    for planted in (hash_key, EMAIL):
        assert_secret_absent(
            planted,
            report.model_dump_json(),
            sink.events[0].model_dump_json(),
            caplog.text,
            repr(policy),
        )


def test_hash_key_ref_naming_a_whole_secret_is_refused(vault: VaultClient, key_name: str) -> None:
    from guardflow.errors import PIIPolicyError

    vault.write(f"pii/{key_name}", {"hmac": secrets.token_hex(8)})
    policy = PIIPolicy.model_validate(
        {"hash_key_ref": f"vault://secret/pii/{key_name}", "default_action": "hash"}
    )
    with pytest.raises(PIIPolicyError, match="#KEY"):
        mask_records([{"notes": EMAIL}], policy, vault=vault)
