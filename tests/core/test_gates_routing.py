"""Routing items to human review: scores by dotted path, ids by field or position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardflow.errors import InputDataError
from guardflow.gates.models import RoutingRule
from guardflow.gates.routing import route_items


def test_items_below_the_threshold_go_to_review_and_the_rest_pass() -> None:
    rule = RoutingRule(score_field="confidence", below=0.8)
    items = [{"id": "a", "confidence": 0.95}, {"id": "b", "confidence": 0.2}]

    review, passed = route_items(items, rule)

    assert [ident for ident, _ in review] == ["b"]
    assert passed == [{"id": "a", "confidence": 0.95}]


def test_a_score_equal_to_the_threshold_passes() -> None:
    review, passed = route_items([{"id": 1, "confidence": 0.8}], RoutingRule(below=0.8))

    assert review == []
    assert len(passed) == 1


@pytest.mark.parametrize("score", [None, "high", float("nan"), True, [0.9]])
def test_a_missing_or_non_numeric_score_goes_to_review(score: object) -> None:
    item = {"id": "x"} if score is None else {"id": "x", "confidence": score}

    review, passed = route_items([item], RoutingRule(below=0.5))

    assert [ident for ident, _ in review] == ["x"]
    assert passed == []


def test_a_numeric_string_score_is_read_as_a_number() -> None:
    review, passed = route_items([{"id": "x", "confidence": "0.99"}], RoutingRule(below=0.5))

    assert review == []
    assert len(passed) == 1


def test_the_score_is_found_by_a_dotted_path() -> None:
    rule = RoutingRule(score_field="model.confidence", below=0.5)
    items = [{"id": "lo", "model": {"confidence": 0.1}}, {"id": "hi", "model": {"confidence": 0.9}}]

    review, _ = route_items(items, rule)

    assert [ident for ident, _ in review] == ["lo"]


def test_item_ids_fall_back_to_the_position_as_text() -> None:
    rule = RoutingRule(id_field=None, below=0.5)

    review, _ = route_items([{"confidence": 0.9}, {"confidence": 0.1}, {}], rule)

    assert [ident for ident, _ in review] == ["1", "2"]


def test_an_item_without_its_id_field_uses_its_position() -> None:
    review, _ = route_items([{"id": 7}, {"name": "no id"}], RoutingRule(below=0.5))

    assert [ident for ident, _ in review] == ["7", "1"]


def test_items_are_returned_as_copies_and_not_modified() -> None:
    item = {"id": "a", "confidence": 0.1}

    review, _ = route_items([item], RoutingRule(below=0.5))
    review[0][1]["confidence"] = 1.0

    assert item["confidence"] == 0.1


def test_duplicate_ids_are_refused_without_echoing_them() -> None:
    with pytest.raises(InputDataError) as info:
        route_items([{"id": "secret-id-42"}, {"id": "secret-id-42"}], RoutingRule())

    assert "secret-id-42" not in str(info.value)
    assert "'id'" in str(info.value)


def test_an_item_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InputDataError, match="not a mapping"):
        route_items([["id", 1]], RoutingRule())  # type: ignore[list-item]


def test_items_are_read_from_a_jsonl_file(tmp_path: Path) -> None:
    from guardflow.gates.routing import load_items
    from guardflow.samples import write_review_items

    scores = tmp_path / "scores.jsonl"
    scores.write_text(
        "\n".join(
            json.dumps(
                {"row_id": f"r{i}", "f0": 1.0, "f1": 2.0, "f2": 3.0, "f3": 4.0, "prediction": p}
            )
            for i, p in enumerate([-30.0, 2.5, 0.0, None])
        )
        + "\n"
    )
    items = load_items(write_review_items(scores, tmp_path / "items.jsonl"))
    assert items is not None
    assert [i["row_id"] for i in items] == ["r0", "r1", "r2", "r3"]
    rule = RoutingRule(score_field="confidence", below=0.5, id_field="row_id")
    to_review, passed = route_items(items, rule)
    # Confident (|score| >= 5) passes; near the boundary or unscored goes to a human.
    assert [i for i, _ in to_review] == ["r1", "r2", "r3"]
    assert [p["row_id"] for p in passed] == ["r0"]


def test_items_from_a_missing_file_give_a_clear_error(tmp_path: Path) -> None:
    from guardflow.gates.routing import load_items

    with pytest.raises(InputDataError):
        load_items(str(tmp_path / "nope.jsonl"))
