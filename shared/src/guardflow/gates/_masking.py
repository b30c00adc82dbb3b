"""Mask what reviewers see: strings inside gate subjects, bodies, context and items.

Every string (nested in dicts and lists too) goes through :func:`guardflow.pii.mask_text` with the
pattern entity types and the ``replace`` action, so an e-mail address becomes ``<EMAIL_ADDRESS>``.
Keys, numbers and booleans are left as they are. When :mod:`guardflow.pii` cannot be imported,
values pass unchanged and a debug message says so once per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["mask_string", "mask_value"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_masker: Callable[[str], str] | None = None
_resolved = False


def _load() -> Callable[[str], str] | None:
    global _masker, _resolved
    with _lock:
        if _resolved:
            return _masker
        try:
            from guardflow.pii import PATTERN_TYPES, PIIPolicy, mask_text

            policy = PIIPolicy(entities=list(PATTERN_TYPES), ner=False)

            def masker(text: str) -> str:
                out = mask_text(text, policy)
                return text if out is None else out

            _masker = masker
        except ImportError:
            logger.debug("guardflow.pii is not importable; gate texts are shown unmasked")
            _masker = None
        _resolved = True
        return _masker


def mask_string(text: str) -> str:
    """Return ``text`` with its PII replaced by ``<TYPE>`` placeholders (as is without pii)."""
    masker = _load()
    if masker is None or not text:
        return text
    return masker(text)


def mask_value(value: Any) -> Any:
    """Return a copy of ``value`` with every string in it masked (mappings and lists recursed)."""
    if isinstance(value, str):
        return mask_string(value)
    if isinstance(value, Mapping):
        return {str(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value
