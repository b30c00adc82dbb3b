"""PII policies: YAML loading, validation errors that name fields (never values), precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardflow.errors import ConfigurationError, PIIPolicyError
from guardflow.pii import Action, ColumnRule, EntityType, PIIPolicy
from guardflow.testing.vault_server import assert_secret_absent

PLANTED_KEY = "hk-planted-7f3a9c"  # pragma: allowlist secret

POLICY_YAML = f"""
entities: [EMAIL_ADDRESS, CREDIT_CARD, US_SSN]
columns:
  email: {{entity: EMAIL_ADDRESS, action: hash}}
  payload: {{free_text: true, json_paths: ["$.user.note"]}}
free_text_columns: [notes]
actions:
  CREDIT_CARD: mask
default_action: redact
mask_keep_last: 2
hash_key: {PLANTED_KEY}
transit_key: pii-test
allow:
  notes: [URL]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_from_yaml_reads_every_field(tmp_path: Path) -> None:
    policy = PIIPolicy.from_yaml(_write(tmp_path, POLICY_YAML))
    assert policy.entities == [EntityType.EMAIL_ADDRESS, EntityType.CREDIT_CARD, EntityType.US_SSN]
    assert policy.columns["email"] == ColumnRule(entity=EntityType.EMAIL_ADDRESS, action="hash")
    assert policy.columns["payload"].json_paths == ["$.user.note"]
    assert policy.free_text_columns == ["notes"]
    assert policy.default_action is Action.REDACT
    assert policy.mask_keep_last == 2
    assert policy.transit_key == "pii-test"
    assert policy.allowed("notes") == {EntityType.URL}


def test_hash_key_is_hidden_in_repr_and_dump(tmp_path: Path) -> None:
    policy = PIIPolicy.from_yaml(_write(tmp_path, POLICY_YAML))
    assert_secret_absent(PLANTED_KEY, repr(policy), str(policy), policy.model_dump_json())


def test_action_precedence_column_then_type_then_default() -> None:
    policy = PIIPolicy.model_validate(
        {
            "columns": {"card": {"entity": "CREDIT_CARD", "action": "keep"}},
            "actions": {"CREDIT_CARD": "mask"},
            "default_action": "redact",
        }
    )
    assert policy.action_for(EntityType.CREDIT_CARD, "card") is Action.KEEP
    assert policy.action_for(EntityType.CREDIT_CARD, "other") is Action.MASK
    assert policy.action_for(EntityType.URL) is Action.REDACT


def test_unknown_entity_type_is_a_policy_error_naming_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, f"hash_key: {PLANTED_KEY}\nactions: {{PASSPORT: mask}}\n")
    with pytest.raises(PIIPolicyError) as info:
        PIIPolicy.from_yaml(path)
    assert isinstance(info.value, ConfigurationError)
    assert "actions" in str(info.value)
    assert_secret_absent(PLANTED_KEY, str(info.value), repr(info.value))


def test_hash_action_without_a_key_is_refused() -> None:
    with pytest.raises(PIIPolicyError, match="hash_key"):
        PIIPolicy.load({"default_action": "hash"})


def test_hash_key_ref_must_be_a_vault_reference() -> None:
    with pytest.raises(PIIPolicyError, match="vault://"):
        PIIPolicy.load({"hash_key_ref": "secret/pii#key", "default_action": "hash"})


def test_unknown_field_is_refused() -> None:
    with pytest.raises(PIIPolicyError, match="free_text_column"):
        PIIPolicy.load({"free_text_column": ["notes"]})


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PIIPolicyError, match="cannot read"):
        PIIPolicy.from_yaml(tmp_path / "nope.yaml")


def test_invalid_yaml_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PIIPolicyError, match="not valid YAML"):
        PIIPolicy.from_yaml(_write(tmp_path, "columns: [unclosed\n"))


def test_default_policy_detects_pattern_types_only_without_ner() -> None:
    assert EntityType.PERSON not in PIIPolicy().detected_types()
    assert EntityType.PERSON in PIIPolicy(ner=True).detected_types()
    assert PIIPolicy(entities=[EntityType.URL]).detected_types() == [EntityType.URL]


def test_allow_star_applies_to_every_column() -> None:
    policy = PIIPolicy.model_validate({"allow": {"*": ["URL"], "notes": ["EMAIL_ADDRESS"]}})
    assert policy.allowed("notes") == {EntityType.URL, EntityType.EMAIL_ADDRESS}
    assert policy.allowed("other") == {EntityType.URL}
