"""Reading the two sides of a drift check into Arrow tables, with drift-specific errors."""

from __future__ import annotations

import os
from typing import Any

from guardflow.errors import DriftInputError, InputDataError
from guardflow.tables import read_table

__all__ = ["PROFILE_SUFFIX", "is_profile_uri", "read_side"]

PROFILE_SUFFIX = ".gfprofile"
"""Suffix of a saved :class:`~guardflow.drift.ReferenceProfile` (a Parquet file inside)."""


def is_profile_uri(source: Any) -> bool:
    """Whether ``source`` is a path or URI naming a saved reference profile."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    return os.fspath(source).split("?", 1)[0].lower().endswith(PROFILE_SUFFIX)


def read_side(source: Any, *, side: str) -> Any:
    """Read one side of a drift check (``"reference"`` or ``"current"``) into a pyarrow Table.

    Raises:
        DriftInputError: The input is missing, unreadable or has no rows or no columns.
        ConfigurationError: The input is of a type guardflow does not read.
    """
    try:
        table = read_table(source)
    except DriftInputError:
        raise
    except InputDataError as exc:
        raise DriftInputError(f"{side} data: {exc.message}") from None
    if table.num_columns == 0:
        raise DriftInputError(f"{side} data has no columns; there is nothing to compare")
    return table
