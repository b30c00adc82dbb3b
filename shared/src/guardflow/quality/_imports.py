"""Importing Great Expectations quietly.

At import GX logs about 200 INFO lines about its own documentation decorators, and each new
context logs its data sources; in an Airflow task log (INFO) that buries the step's own lines.
GX's logger is set to WARNING only when nobody configured it (level NOTSET): an explicit level set
by the application stays as it is.
"""

from __future__ import annotations

import logging
from types import ModuleType

from guardflow._optional import require

__all__ = ["gx_module"]


def gx_module(name: str = "great_expectations") -> ModuleType:
    """Import ``name`` (a ``great_expectations`` module) with GX's INFO chatter turned down.

    Raises:
        MissingExtraError: great-expectations is not installed (``quality`` extra).
    """
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    return require(name, "quality")
