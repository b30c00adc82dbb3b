"""Table inputs the masking engine must not skip, leak or rewrite needlessly.

Each case came from running the engine as a user would: a DataFrame column mixing numbers and
text, string columns stored as dictionaries or views, lists and structs, JSON text with paths,
non-string columns named as free text, and a scan of already masked output.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from guardflow.errors import InputDataError
from guardflow.pii import PIIPolicy, mask_table, scan_table

PLANTED = "jane.planted@example.org"


def test_mixed_type_dataframe_column_is_a_clear_error_without_the_value() -> None:
    frame = pd.DataFrame({"id": [1, 2], "v": [5, PLANTED]})
    for run in (scan_table, lambda f: mask_table(f, PIIPolicy())):
        with pytest.raises(InputDataError) as caught:
            run(frame)
        message = str(caught.value)
        assert "column 'v'" in message and "mixes value types" in message
        assert PLANTED not in message and PLANTED not in repr(caught.value.args)
        assert caught.value.__cause__ is None  # Arrow's own message (it quotes the value) dropped


def _odd_columns() -> pa.Table:
    return pa.table(
        {
            "view": pa.array([PLANTED, "nothing here"], pa.string_view()),
            "dict": pa.array([PLANTED, PLANTED]).dictionary_encode(),
            "list": pa.array([[PLANTED, "x"], None]),
            "struct": pa.array([{"email": PLANTED, "n": 1}, None]),
            "n": pa.array([1, 2]),
        }
    )


def test_default_policy_scans_view_dictionary_list_and_struct_string_columns() -> None:
    table = _odd_columns()
    counts = scan_table(table).counts
    assert counts == {
        "view": {"EMAIL_ADDRESS": 1},
        "dict": {"EMAIL_ADDRESS": 2},
        "list": {"EMAIL_ADDRESS": 1},
        "struct": {"EMAIL_ADDRESS": 1},
    }
    out, report = mask_table(table, PIIPolicy())
    assert out.schema == table.schema  # each column written back in its own type
    assert PLANTED not in json.dumps(out.to_pylist())
    assert out.column("view").to_pylist() == ["<EMAIL_ADDRESS>", "nothing here"]
    assert out.column("struct").to_pylist() == [{"email": "<EMAIL_ADDRESS>", "n": 1}, None]
    assert report.rows_touched == 2 and scan_table(out).counts == {}


def test_json_paths_apply_to_json_text_in_a_string_column() -> None:
    policy = PIIPolicy.model_validate(
        {
            "columns": {
                "payload": {
                    "entity": "EMAIL_ADDRESS",
                    "action": "replace",
                    "json_paths": ["$.user.email"],
                }
            }
        }
    )
    untouched = '{"n":1e2,"s":"\\u00e9"}'  # no value at the path: the text stays byte for byte
    cells = [json.dumps({"user": {"email": PLANTED, "name": "Jane"}, "n": 5}), untouched]
    out, report = mask_table(pa.table({"payload": cells}), policy)
    masked = out.column("payload").to_pylist()
    assert json.loads(masked[0]) == {"user": {"email": "<EMAIL_ADDRESS>", "name": "Jane"}, "n": 5}
    assert masked[1] == untouched
    assert report.counts == {"payload": {"EMAIL_ADDRESS": 1}} and report.rows_touched == 1


def test_non_string_free_text_column_keeps_its_type_when_nothing_is_found() -> None:
    policy = PIIPolicy.model_validate({"free_text_columns": ["f", "body"]})
    table = pa.table({"f": pa.array([1.5, 2.0]), "body": ["hi", f"mail {PLANTED}"]})
    out, _ = mask_table(table, policy)
    assert out.schema.field("f").type == pa.float64()
    assert out.to_pylist() == [{"f": 1.5, "body": "hi"}, {"f": 2.0, "body": "mail <EMAIL_ADDRESS>"}]


@pytest.mark.parametrize("action", ["replace", "mask", "hash", "redact"])
def test_rescanning_masked_whole_columns_with_the_same_policy_finds_nothing(action: str) -> None:
    policy = PIIPolicy.model_validate(
        {
            "hash_key": "k" * 32,
            "columns": {
                "card": {"entity": "CREDIT_CARD", "action": action},
                "email": {"entity": "EMAIL_ADDRESS", "action": action},
            },
        }
    )
    table = pa.table({"card": ["4111111111111111", None], "email": [PLANTED, "b@example.net"]})
    assert scan_table(table, policy).counts == {
        "card": {"CREDIT_CARD": 1},
        "email": {"EMAIL_ADDRESS": 2},
    }
    out, _ = mask_table(table, policy)
    assert PLANTED not in json.dumps(out.to_pylist())
    assert scan_table(out, policy).counts == {}
    # a real value in a masked column is still counted
    mixed = pa.table({"card": [out.column("card")[0].as_py(), "5555555555554444"]})
    assert scan_table(mixed, policy).counts == {"card": {"CREDIT_CARD": 1}}
