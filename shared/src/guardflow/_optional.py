"""Lazy imports of optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from guardflow.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str, *, package: str = "guardflow") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    Args:
        module: Dotted module name, e.g. ``"pyarrow.parquet"``.
        extra: The extra that installs it, e.g. ``"data"``.
        package: The distribution that declares the extra.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: The module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module=module, extra=extra, package=package) from exc
