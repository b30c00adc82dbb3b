"""Route items to human review: only those a routing rule says need a human.

An item needs review when its score (looked up by a dotted path such as ``model.confidence``) is
missing, not a finite number, or strictly below the rule's threshold. The others pass without
review. Item ids come from the rule's id field, else the item's position.

Examples:
    >>> from guardflow.gates.models import RoutingRule
    >>> rule = RoutingRule(score_field="confidence", below=0.8)
    >>> review, passed = route_items(
    ...     [{"id": "a", "confidence": 0.95}, {"id": "b", "confidence": 0.4}, {"id": "c"}], rule
    ... )
    >>> [item_id for item_id, _ in review], [item["id"] for item in passed]
    (['b', 'c'], ['a'])
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from guardflow.errors import InputDataError
from guardflow.gates.models import RoutingRule

__all__ = [
    "item_id",
    "item_score",
    "load_items",
    "lookup",
    "route_items",
]

_MISSING = object()


def lookup(item: Mapping[str, Any], path: str | None) -> Any:
    """Return the value at a dotted ``path`` in ``item``, or ``None`` when any part is missing.

    A key containing dots is found as is before the path is split.
    """
    if not path:
        return None
    if path in item:
        return item[path]
    current: Any = item
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def item_score(item: Mapping[str, Any], rule: RoutingRule) -> float | None:
    """Return the item's score as a finite float, or ``None`` when missing or not numeric."""
    value = lookup(item, rule.score_field)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        else:
            return None
    score = float(value)
    return score if math.isfinite(score) else None


def item_id(item: Mapping[str, Any], rule: RoutingRule, position: int) -> str:
    """Return the item's id: its id field as text, else its position as text."""
    value = lookup(item, rule.id_field)
    return str(position) if value is None else str(value)


def route_items(
    items: Sequence[Mapping[str, Any]], rule: RoutingRule
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """Split items into those a human must review and those that pass.

    Args:
        items: The items (mappings); they are not modified.
        rule: The routing rule (score field, threshold, id field).

    Returns:
        ``(to_review, passed)``: ``to_review`` as ``(item_id, item)`` pairs in input order,
        ``passed`` as the items let through.

    Raises:
        InputDataError: An item is not a mapping, or two items share an id (the message names
            the id field, never the ids).
    """
    to_review: list[tuple[str, dict[str, Any]]] = []
    passed: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, raw in enumerate(items):
        if not isinstance(raw, Mapping):
            raise InputDataError(
                f"gate item at position {position} is a {type(raw).__name__}, not a mapping"
            )
        item = dict(raw)
        ident = item_id(item, rule, position)
        if ident in seen:
            raise InputDataError(
                f"two gate items share an id in field {rule.id_field!r}; "
                "make the ids unique or set RoutingRule(id_field=None) to use positions"
            )
        seen.add(ident)
        score = item_score(item, rule)
        if score is None or score < rule.below:
            to_review.append((ident, item))
        else:
            passed.append(item)
    return to_review, passed


def load_items(
    source: Sequence[Mapping[str, Any]] | str | os.PathLike[str] | None,
) -> list[Mapping[str, Any]] | None:
    """Return items given inline, or read them from a Parquet, CSV or JSONL file or URI.

    Args:
        source: The items, a file path or URI, or ``None``.

    Returns:
        The items as mappings (``None`` when none were given).

    Raises:
        InputDataError: The file cannot be read or is not a table.
        MissingExtraError: Reading files needs the ``data`` extra (pyarrow).
    """
    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)):
        from guardflow.tables import read_table

        rows: list[Mapping[str, Any]] = read_table(os.fspath(source)).to_pylist()
        return rows
    return list(source)
