"""Masking text, records and tables: actions, column rules, JSON paths, nulls, reports, audit."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from guardflow.audit import MemoryAuditSink
from guardflow.errors import PIIFoundError, PIIPolicyError
from guardflow.pii import (
    Detector,
    EntityType,
    PIIPolicy,
    mask_records,
    mask_table,
    mask_text,
    scan_table,
)
from guardflow.testing.vault_server import assert_secret_absent

EMAIL = "planted.person@example.org"
CARD = "4111 1111 1111 1111"
SSN = "536-22-8126"
HASH_KEY = "test-hmac-key-2f9d"  # pragma: allowlist secret
TEXT = f"Contact {EMAIL} today; card {CARD} on file, SSN {SSN}."
PLANTED = (EMAIL, CARD, SSN)


def _hmac(value: str, key: str = HASH_KEY) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def _policy(**extra: Any) -> PIIPolicy:
    return PIIPolicy.model_validate({"hash_key": HASH_KEY, **extra})


def _whole(entity: str, action: str, **extra: Any) -> PIIPolicy:
    return _policy(columns={"v": {"entity": entity, "action": action}}, **extra)


# --- actions on columns known to hold one type (no detection) -----------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("replace", "<EMAIL_ADDRESS>"),
        ("redact", ""),
        ("mask", "*" * (len(EMAIL) - 4) + EMAIL[-4:]),
        ("keep", EMAIL),
        ("hash", _hmac(EMAIL)),
    ],
)
def test_whole_column_action(action: str, expected: str) -> None:
    rows, report = mask_records([{"v": EMAIL, "id": 7}], _whole("EMAIL_ADDRESS", action))
    assert rows == [{"v": expected, "id": 7}]
    assert report.counts == {"v": {"EMAIL_ADDRESS": 1}}


def test_mask_keeps_configured_number_of_chars() -> None:
    rows, _ = mask_records([{"v": SSN}], _whole("US_SSN", "mask", mask_keep_last=2))
    assert rows[0]["v"] == "*********26"


def test_mask_of_a_value_shorter_than_kept_part_hides_it_all() -> None:
    rows, _ = mask_records([{"v": "12"}], _whole("US_SSN", "mask"))
    assert rows[0]["v"] == "**"


def test_hash_is_deterministic_so_hashed_columns_still_join() -> None:
    left, _ = mask_table(
        pa.table({"v": [EMAIL, "b@example.org"], "x": [1, 2]}), _whole("EMAIL_ADDRESS", "hash")
    )
    right, _ = mask_table(
        pa.table({"v": ["b@example.org", EMAIL], "y": [20, 10]}), _whole("EMAIL_ADDRESS", "hash")
    )
    joined = left.join(right, "v").sort_by("x")
    assert joined.column("y").to_pylist() == [10, 20]
    assert_secret_absent(EMAIL, left.to_pylist(), right.to_pylist())


def test_hash_depends_on_the_key() -> None:
    one, _ = mask_records([{"v": EMAIL}], _whole("EMAIL_ADDRESS", "hash"))
    other = PIIPolicy.model_validate(
        {"hash_key": "another-key", "columns": {"v": {"entity": "EMAIL_ADDRESS", "action": "hash"}}}
    )
    two, _ = mask_records([{"v": EMAIL}], other)
    assert one[0]["v"] != two[0]["v"]


def test_tokenize_without_vault_is_a_policy_error() -> None:
    with pytest.raises(PIIPolicyError, match="vault="):
        mask_records([{"v": EMAIL}], _whole("EMAIL_ADDRESS", "tokenize"))


def test_nulls_stay_null_and_empty_strings_are_not_counted() -> None:
    table, report = mask_table(
        pa.table({"v": [EMAIL, None, ""]}), _whole("EMAIL_ADDRESS", "replace")
    )
    assert table.column("v").to_pylist() == ["<EMAIL_ADDRESS>", None, ""]
    assert report.counts == {"v": {"EMAIL_ADDRESS": 1}}
    assert report.rows_scanned == 3
    assert report.rows_touched == 1


def test_non_string_column_with_a_rule_is_masked_as_text() -> None:
    table, _ = mask_table(pa.table({"v": [4155550132, None]}), _whole("PHONE_NUMBER", "mask"))
    assert table.column("v").to_pylist() == ["******0132", None]


def test_columns_not_in_the_policy_are_untouched() -> None:
    source = pa.table({"v": [EMAIL], "other": ["keep me"], "n": [1.5]})
    table, report = mask_table(source, _whole("EMAIL_ADDRESS", "replace"))
    assert table.column("other").to_pylist() == ["keep me"]
    assert table.schema.field("n").type == pa.float64()
    assert report.columns_scanned == ["v"]


@pytest.mark.parametrize(
    "make",
    [
        lambda rows: pd.DataFrame(rows),
        lambda rows: pl.DataFrame(rows),
        lambda rows: pa.Table.from_pylist(rows),
        lambda rows: rows,
    ],
    ids=["pandas", "polars", "arrow", "records"],
)
def test_mask_table_accepts_every_input_kind(make: Any) -> None:
    rows = [{"v": EMAIL, "id": 1}, {"v": None, "id": 2}]
    table, report = mask_table(make(rows), _whole("EMAIL_ADDRESS", "replace"))
    assert isinstance(table, pa.Table)
    assert table.to_pylist() == [{"v": "<EMAIL_ADDRESS>", "id": 1}, {"v": None, "id": 2}]
    assert report.rows_scanned == 2


# --- nested records and JSON paths ---------------------------------------------------------------


def test_json_paths_select_nested_values() -> None:
    policy = _policy(
        columns={"user": {"entity": "EMAIL_ADDRESS", "json_paths": ["$.contact.email", "$.alt[*]"]}}
    )
    record = {
        "user": {"contact": {"email": EMAIL, "name": "x"}, "alt": ["a@example.org"]},
        "id": 1,
    }
    rows, report = mask_records([record], policy)
    assert rows[0]["user"] == {
        "contact": {"email": "<EMAIL_ADDRESS>", "name": "x"},
        "alt": ["<EMAIL_ADDRESS>"],
    }
    assert record["user"]["contact"]["email"] == EMAIL  # the input is not modified
    assert report.counts == {"user": {"EMAIL_ADDRESS": 2}}


def test_json_paths_into_a_json_string_column() -> None:
    policy = _policy(columns={"payload": {"entity": "US_SSN", "json_paths": ["$.ssn"]}})
    rows, _ = mask_records([{"payload": json.dumps({"ssn": SSN, "n": 3})}], policy)
    assert json.loads(rows[0]["payload"]) == {"ssn": "<US_SSN>", "n": 3}


def test_json_paths_into_an_arrow_struct_column() -> None:
    policy = _policy(columns={"s": {"entity": "US_SSN", "json_paths": ["$.ssn"]}})
    source = pa.Table.from_pylist([{"s": {"ssn": SSN, "n": 1}}, {"s": None}])
    table, _ = mask_table(source, policy)
    assert table.column("s").to_pylist() == [{"ssn": "<US_SSN>", "n": 1}, None]
    assert table.schema.field("s").type == source.schema.field("s").type


def test_bad_json_path_is_a_policy_error() -> None:
    # Refused when the policy loads, naming the field, before any record is read.
    with pytest.raises(PIIPolicyError, match=r"columns\.v\.json_paths: .*JSON path"):
        mask_records(
            [{"v": {}}], {"hash_key": HASH_KEY, "columns": {"v": {"json_paths": ["$..deep"]}}}
        )


# --- report and audit -----------------------------------------------------------------------------


def test_report_and_audit_event_hold_counts_never_values() -> None:
    sink = MemoryAuditSink()
    source = pa.table({"v": [EMAIL, EMAIL, None], "s": [SSN, None, SSN]})
    policy = _policy(
        columns={"v": {"entity": "EMAIL_ADDRESS"}, "s": {"entity": "US_SSN", "action": "hash"}}
    )
    _, report = mask_table(source, policy, audit_sink=sink)
    assert report.counts == {"v": {"EMAIL_ADDRESS": 2}, "s": {"US_SSN": 2}}
    assert report.rows_touched == 3
    assert report.bytes_scanned == 2 * len(EMAIL) + 2 * len(SSN)
    assert report.input_fingerprint is not None
    assert report.input_fingerprint.startswith("sha256:")
    assert len(sink.events) == 1
    event = sink.events[0]
    assert event.step_kind == "pii"
    assert event.counts["entities"] == 4
    assert event.counts["entities.US_SSN"] == 2
    for value in PLANTED:
        assert_secret_absent(value, report.model_dump_json(), event.model_dump_json())
    assert_secret_absent(HASH_KEY, report.model_dump_json(), event.model_dump_json())


def test_failed_run_still_leaves_one_audit_event() -> None:
    sink = MemoryAuditSink()
    with pytest.raises(PIIPolicyError):
        mask_table(pa.table({"v": [EMAIL]}), _whole("EMAIL_ADDRESS", "tokenize"), audit_sink=sink)
    assert [e.outcome for e in sink.events] == ["failed"]
    assert sink.events[0].error_type == "PIIPolicyError"


def test_scan_counts_without_changing_and_reports_violations() -> None:
    policy = _policy(
        columns={"v": {"entity": "EMAIL_ADDRESS"}, "s": {"entity": "US_SSN"}},
        allow={"v": ["EMAIL_ADDRESS"]},
    )
    report = scan_table(pa.table({"v": [EMAIL], "s": [SSN]}), policy)
    assert report.counts == {"v": {"EMAIL_ADDRESS": 1}, "s": {"US_SSN": 1}}
    assert report.violations == {"s": {"US_SSN": 1}}
    with pytest.raises(PIIFoundError) as info:
        report.raise_for_violations()
    assert info.value.report is report
    assert "US_SSN" in str(info.value)
    assert_secret_absent(SSN, str(info.value))


def test_scan_with_everything_allowed_does_not_raise() -> None:
    policy = _policy(columns={"v": {"entity": "EMAIL_ADDRESS"}}, allow={"*": ["EMAIL_ADDRESS"]})
    scan_table(pa.table({"v": [EMAIL]}), policy).raise_for_violations()


# --- free text (detection by guardflow.pii.Detector) --------------------------------------------


def test_mask_text_replaces_each_span_keeping_the_rest() -> None:
    masked = mask_text(TEXT)
    assert masked == "Contact <EMAIL_ADDRESS> today; card <CREDIT_CARD> on file, SSN <US_SSN>."


def test_mask_text_none_stays_none() -> None:
    assert mask_text(None) is None


@pytest.mark.parametrize("action", ["replace", "redact", "mask", "hash"])
def test_masked_free_text_rescanned_holds_no_pii(action: str) -> None:
    policy = _policy(free_text_columns=["notes"], default_action=action)
    texts = [TEXT, f"{CARD} and {EMAIL}", None, "nothing here", f"ssn:{SSN}"]
    table, report = mask_table(pa.table({"notes": texts}), policy)
    masked = table.column("notes").to_pylist()
    assert masked[2] is None and masked[3] == "nothing here"
    assert report.counts["notes"] == {"CREDIT_CARD": 2, "EMAIL_ADDRESS": 2, "US_SSN": 2}
    assert report.rows_touched == 3
    assert Detector(policy.detected_types()).detect_many(masked) == [[] for _ in masked]
    for value in PLANTED:
        assert_secret_absent(value, masked, report.model_dump_json())


def test_free_text_hash_of_a_span_equals_the_hash_of_the_value() -> None:
    policy = _policy(free_text_columns=["notes"], actions={"EMAIL_ADDRESS": "hash"})
    rows, _ = mask_records([{"notes": f"mail {EMAIL} now"}], policy)
    assert rows[0]["notes"] == f"mail {_hmac(EMAIL)} now"


def test_free_text_column_rule_action_overrides_type_action() -> None:
    policy = _policy(
        columns={"notes": {"free_text": True, "action": "redact"}},
        actions={"EMAIL_ADDRESS": "mask"},
    )
    rows, _ = mask_records([{"notes": f"[{EMAIL}]"}], policy)
    assert rows[0]["notes"] == "[]"


def test_policy_entities_limit_what_is_masked() -> None:
    policy = _policy(free_text_columns=["notes"], entities=[EntityType.US_SSN])
    rows, report = mask_records([{"notes": TEXT}], policy)
    assert EMAIL in rows[0]["notes"]
    assert SSN not in rows[0]["notes"]
    assert report.counts == {"notes": {"US_SSN": 1}}


def test_without_column_config_every_string_column_is_scanned() -> None:
    rows, report = mask_records([{"a": f"x {EMAIL}", "b": f"ssn {SSN}", "n": 5}], PIIPolicy())
    assert rows == [{"a": "x <EMAIL_ADDRESS>", "b": "ssn <US_SSN>", "n": 5}]
    assert sorted(report.columns_scanned) == ["a", "b"]


def test_nested_free_text_is_scanned_everywhere_without_paths() -> None:
    policy = _policy(columns={"doc": {"free_text": True}})
    rows, _ = mask_records([{"doc": {"notes": [f"hi {EMAIL}"], "n": 1}}], policy)
    assert rows[0]["doc"] == {"notes": ["hi <EMAIL_ADDRESS>"], "n": 1}
