"""JSON paths into nested records: find the strings to scan and put masked ones back.

Paths are a small JSONPath subset: ``$`` (optional), ``.key``, ``['key']``, ``[N]``, ``[*]`` and
``.*``. A path that ends on an object or array selects every string beneath it.

Examples:
    >>> record = {"user": {"email": "a@b.io", "tags": ["x", "y"]}, "n": 1}
    >>> slots = string_slots([record], [parse_path("$.user.tags[*]")])
    >>> [container[key] for container, key in slots]
    ['x', 'y']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from guardflow.errors import PIIPolicyError

__all__ = ["Step", "parse_path", "string_slots"]

#: One path step: a key, an index, or ``None`` for a wildcard.
Step = str | int | None

_TOKEN = re.compile(r"\.([A-Za-z_][\w\-]*|\*)|\[(\d+|\*|'[^']*'|\"[^\"]*\")\]")


def parse_path(path: str) -> list[Step]:
    """Parse ``path`` into steps.

    Raises:
        PIIPolicyError: The path is not of the supported form.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    if text and not text.startswith((".", "[")):
        text = "." + text
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PIIPolicyError(
                f"JSON path {path!r} is not supported: use $.key, ['key'], [N] or [*] steps"
            )
        name, bracket = match.group(1), match.group(2)
        if name is not None:
            steps.append(None if name == "*" else name)
        elif bracket == "*":
            steps.append(None)
        elif bracket.isdigit():
            steps.append(int(bracket))
        else:
            steps.append(bracket[1:-1])
        pos = match.end()
    return steps


def string_slots(holder: list[Any], paths: Sequence[Sequence[Step]]) -> list[tuple[Any, Any]]:
    """Return ``(container, key)`` for every string selected by ``paths`` in ``holder[0]``.

    ``holder`` is a one-item list holding the value, so that a value that is itself a string
    has a slot to be written back to. With no paths, every string in the value is selected.
    The same slot is returned once.
    """
    out: list[tuple[Any, Any]] = []
    seen: set[tuple[int, Any]] = set()
    for steps in paths or [[]]:
        _walk(holder, 0, list(steps), out, seen)
    return out


def _walk(
    container: Any, key: Any, steps: list[Step], out: list[tuple[Any, Any]], seen: set[Any]
) -> None:
    node = container[key]
    if not steps:
        _all_strings(container, key, out, seen)
        return
    step, rest = steps[0], steps[1:]
    if isinstance(node, dict):
        keys: list[Any] = list(node) if step is None else ([step] if step in node else [])
    elif isinstance(node, list):
        if step is None:
            keys = list(range(len(node)))
        elif isinstance(step, int) and step < len(node):
            keys = [step]
        else:
            keys = []
    else:
        return
    for k in keys:
        _walk(node, k, rest, out, seen)


def _all_strings(container: Any, key: Any, out: list[tuple[Any, Any]], seen: set[Any]) -> None:
    node = container[key]
    if isinstance(node, str):
        ident = (id(container), key)
        if ident not in seen:
            seen.add(ident)
            out.append((container, key))
    elif isinstance(node, dict):
        for k in list(node):
            _all_strings(node, k, out, seen)
    elif isinstance(node, list):
        for i in range(len(node)):
            _all_strings(node, i, out, seen)
