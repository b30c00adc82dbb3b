"""Expectation suites from Python, YAML or JSON, checked before any data is touched.

A suite file holds the same shape Great Expectations 1.x writes (``suite.to_json_dict()``), so a
suite exported from a GX project loads as is::

    name: orders
    expectations:
      - type: expect_column_values_to_not_be_null
        kwargs: {column: order_id}
      - type: expect_column_values_to_be_between
        kwargs: {column: amount, min_value: 0, max_value: 10000}
        meta: {owner: data-platform}

Every expectation is built up front: an unknown type or invalid arguments raise
:class:`~guardflow.errors.ConfigurationError` naming the expectation (its position, type and
column), never the argument values (a ``value_set`` may list sensitive values).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from guardflow._optional import require
from guardflow.errors import ConfigurationError
from guardflow.quality._imports import gx_module
from guardflow.tables import local_path, safe_uri

__all__ = ["load_suite", "named_columns", "suite_spec"]

_SUITE_KEYS = {"name", "expectations", "meta", "notes", "id", "suite_parameters"}
_EXPECTATION_KEYS = {
    "type",
    "expectation_type",
    "kwargs",
    "meta",
    "notes",
    "description",
    "severity",
    "id",
    "rendered_content",
    "success_on_last_run",
    "expectation_context",
}
_BUILD_KEYS = ("meta", "notes", "description", "severity")


def load_suite(suite: Any, *, name: str | None = None) -> Any:
    """Return a Great Expectations ``ExpectationSuite`` from a suite, a dict or a file.

    Args:
        suite: A ``great_expectations.ExpectationSuite``; a dict ``{"name": ..., "expectations":
            [{"type": ..., "kwargs": {...}, "meta": {...}}]}``; or the path (or fsspec URI) of a
            ``.yaml``/``.yml``/``.json`` file holding that dict.
        name: The suite's name when the input has none (default: the file's stem, else
            ``"guardflow"``).

    Returns:
        A new ``ExpectationSuite`` that belongs to no data context (a GX suite passed in is
        copied, so the caller's suite and its context are left alone).

    Raises:
        ConfigurationError: The file is missing or unparsable, the dict has unknown keys, or an
            expectation has an unknown type or invalid arguments.
        MissingExtraError: great-expectations is not installed (``quality`` extra).

    Examples:
        >>> suite = load_suite({"name": "orders", "expectations": [
        ...     {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}]})
        >>> suite.name, len(suite.expectations)
        ('orders', 1)
    """
    spec = suite_spec(suite, name=name)
    gx = gx_module("great_expectations")
    expectations = [_build(i, item) for i, item in enumerate(spec["expectations"], start=1)]
    return gx.ExpectationSuite(
        name=spec["name"],
        expectations=expectations,
        meta=dict(spec.get("meta") or {}) or None,
        notes=spec.get("notes"),
        suite_parameters=dict(spec.get("suite_parameters") or {}) or None,
    )


def suite_spec(suite: Any, *, name: str | None = None) -> dict[str, Any]:
    """Return the plain-dict form of ``suite`` (see :func:`load_suite`), checked for shape only.

    Expectation types and arguments are not checked here (that needs Great Expectations).

    Raises:
        ConfigurationError: The input is of an unknown kind or the dict is malformed.
    """
    if isinstance(suite, (str, os.PathLike)):
        where = os.fspath(suite)
        data = _read_file(where)
        default_name = name or Path(where.split("?", 1)[0]).stem
        origin = f"suite file {safe_uri(where)!r}"
    elif type(suite).__name__ == "ExpectationSuite" and hasattr(suite, "to_json_dict"):
        data, default_name, origin = suite.to_json_dict(), name or "guardflow", "suite"
    elif isinstance(suite, Mapping):
        data, default_name, origin = dict(suite), name or "guardflow", "suite"
    else:
        raise ConfigurationError(
            f"cannot read a suite of type {type(suite).__name__}: pass a great_expectations "
            "ExpectationSuite, a dict, or the path of a .yaml or .json suite file"
        )
    return _check_shape(data, default_name=default_name, origin=origin)


def _read_file(where: str) -> Any:
    suffix = Path(where.split("?", 1)[0]).suffix.lower()
    if suffix not in {".yaml", ".yml", ".json"}:
        raise ConfigurationError(
            f"cannot tell the format of suite file {safe_uri(where)!r}: name it .yaml or .json"
        )
    path = local_path(where)
    try:
        if path is not None:
            text = Path(path).read_text(encoding="utf-8")
        else:
            with require("fsspec", "data").open(where, "rt", encoding="utf-8") as fh:
                text = fh.read()
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigurationError(f"suite file {safe_uri(where)!r} not found") from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read suite file {safe_uri(where)!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        return json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        where_ = f"line {exc.lineno}, column {exc.colno}"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where_ = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
    # The parser's own message may quote the file; the position is enough to find the problem.
    raise ConfigurationError(f"suite file {safe_uri(where)!r} is not valid {suffix[1:]} ({where_})")


def _check_shape(data: Any, *, default_name: str, origin: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{origin} must be a mapping with 'name' and 'expectations'")
    unknown = sorted(set(data) - _SUITE_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{origin} has unknown keys {unknown}; allowed: {sorted(_SUITE_KEYS)}"
        )
    spec = dict(data)
    spec["name"] = spec.get("name") or default_name
    if not isinstance(spec["name"], str):
        raise ConfigurationError(f"{origin}: 'name' must be a string")
    items = spec.get("expectations") or []
    if not isinstance(items, list):
        raise ConfigurationError(f"{origin}: 'expectations' must be a list")
    checked = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"{origin}: expectation #{i} must be a mapping")
        unknown = sorted(set(item) - _EXPECTATION_KEYS)
        etype = item.get("type", item.get("expectation_type"))
        if not isinstance(etype, str) or not etype:
            raise ConfigurationError(f"{origin}: expectation #{i} has no 'type'")
        if unknown:
            raise ConfigurationError(
                f"{origin}: expectation #{i} ({etype}) has unknown keys {unknown}; "
                f"allowed: {sorted(_EXPECTATION_KEYS - {'expectation_type'})}"
            )
        kwargs = item.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ConfigurationError(
                f"{origin}: expectation #{i} ({etype}): 'kwargs' must be a map"
            )
        entry = {"type": etype, "kwargs": {k: v for k, v in kwargs.items() if k != "batch_id"}}
        entry.update({k: item[k] for k in _BUILD_KEYS if item.get(k) is not None})
        checked.append(entry)
    spec["expectations"] = checked
    return spec


def named_columns(kwargs: Mapping[str, Any]) -> list[str]:
    """Return the columns an expectation's kwargs name (``column``, ``column_A``/``_B``, lists)."""
    names = [
        kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)
    ]
    if isinstance(kwargs.get("column_list"), (list, tuple)):
        names += [c for c in kwargs["column_list"] if isinstance(c, str)]
    return names


def _label(index: int, item: Mapping[str, Any]) -> str:
    columns = named_columns(item["kwargs"])
    on = f" on column {', '.join(repr(c) for c in columns)}" if columns else ""
    return f"expectation #{index} ({item['type']}{on})"


def _build(index: int, item: Mapping[str, Any]) -> Any:
    config_mod = gx_module("great_expectations.expectations.expectation_configuration")
    exceptions = gx_module("great_expectations.exceptions")
    label = _label(index, item)
    try:
        config = config_mod.ExpectationConfiguration(
            type=item["type"],
            kwargs=dict(item["kwargs"]),
            **{k: item[k] for k in _BUILD_KEYS if k in item},
        )
        return config.to_domain_obj()
    except exceptions.ExpectationNotFoundError:
        raise ConfigurationError(f"unknown {label}{_did_you_mean(item['type'])}") from None
    except ValueError as exc:  # pydantic (v1 in GX) ValidationError is a ValueError
        raise ConfigurationError(f"invalid arguments for {label}: {_problems(exc)}") from None
    except (exceptions.GreatExpectationsError, TypeError) as exc:
        raise ConfigurationError(
            f"invalid {label} ({type(exc).__name__}); check its type and kwargs"
        ) from None


def _did_you_mean(etype: str) -> str:
    registry = gx_module("great_expectations.expectations.registry")
    known = registry.list_registered_expectation_implementations()
    close = difflib.get_close_matches(etype, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _problems(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return type(exc).__name__
    by_field: dict[str, list[str]] = {}
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        # pydantic v1 messages describe the rule ("field required"), not the input value.
        msgs = by_field.setdefault(loc, [])
        if err.get("msg", "invalid") not in msgs:
            msgs.append(err.get("msg", "invalid"))
    return "; ".join(f"{loc}: {' or '.join(msgs)}" for loc, msgs in by_field.items())
