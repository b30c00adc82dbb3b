"""What every check step shares on both orchestrators: the failure policy and its messages.

A check that ran and found a problem (the data drifted, a suite failed, PII where none is
allowed) is a result, not an error of the step: it is never retried, and the step's
``on_failure`` decides what happens. ``fail`` fails the step, ``warn`` logs a warning and goes
on, ``skip`` tells downstream steps to skip (a skipped task in Airflow; a returned result the flow
branches on in Prefect, which has no skip state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from guardflow.errors import ConfigurationError

__all__ = ["FAILURE_POLICIES", "OnFailure", "name_list", "validate_on_failure"]

OnFailure = Literal["fail", "warn", "skip"]
"""What a check step does when the check fails: fail, warn, or skip downstream."""

FAILURE_POLICIES: tuple[str, ...] = get_args(OnFailure)
"""The accepted ``on_failure`` values, in the order the docs list them."""


def validate_on_failure(value: str) -> OnFailure:
    """Validate an ``on_failure`` argument before anything runs.

    Args:
        value: The step's ``on_failure`` argument.

    Returns:
        The value, typed.

    Raises:
        ConfigurationError: The value is not ``fail``, ``warn`` or ``skip``.

    Examples:
        >>> validate_on_failure("warn")
        'warn'
    """
    if value not in FAILURE_POLICIES:
        raise ConfigurationError(
            f"on_failure must be one of {list(FAILURE_POLICIES)}, not {value!r}"
        )
    return value  # type: ignore[return-value]


def name_list(names: Sequence[str], limit: int = 20) -> str:
    """Join column (or expectation) names for a message, shortening long lists.

    Args:
        names: Names to list.
        limit: How many to name before summarising the rest as ``and N more``.

    Returns:
        ``"a, b, c"`` or ``"a, b, ... and 12 more"``.

    Examples:
        >>> name_list(["a", "b", "c"], limit=2)
        'a, b, ... and 1 more'
    """
    shown = ", ".join(names[:limit])
    return f"{shown}, ... and {len(names) - limit} more" if len(names) > limit else shown
