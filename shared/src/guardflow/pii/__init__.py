"""PII detection and masking at scan speed.

Detection (:class:`Detector`, :func:`detect`) finds e-mail addresses, phone numbers, payment
cards, IBANs, US SSNs, IP and MAC addresses, URLs, Bitcoin addresses and leaked credentials with
one vectorised Rust-regex pass per column and exact validators (Luhn, mod-97, phonenumbers,
ipaddress, base58check/bech32) on the candidates only; entity names are Presidio's. Masking
(:func:`mask_text`, :func:`mask_records`, :func:`mask_table`, :func:`mask_file`) applies a
:class:`PIIPolicy` and returns a :class:`PIIReport` that holds counts, never values.

Examples:
    >>> from guardflow.pii import detect
    >>> [(e.type.value, e.start, e.end) for e in detect("write to jane@example.org")]
    [('EMAIL_ADDRESS', 9, 25)]
"""

from __future__ import annotations

import importlib
from typing import Any

from guardflow.pii.detector import Detector, detect
from guardflow.pii.entities import NER_TYPES, PATTERN_TYPES, Entity, EntityType

__all__ = [
    "NER_TYPES",
    "PATTERN_TYPES",
    "Action",
    "ColumnRule",
    "Detector",
    "Entity",
    "EntityType",
    "PIIPolicy",
    "PIIReport",
    "detect",
    "detokenize",
    "mask_file",
    "mask_records",
    "mask_table",
    "mask_text",
    "scan_file",
    "scan_table",
]

# Names defined by the masking modules, imported on first use so that detection works (and this
# package imports) without them and without their dependencies.
_LAZY: dict[str, str] = {
    "Action": "guardflow.pii.policy",
    "ColumnRule": "guardflow.pii.policy",
    "PIIPolicy": "guardflow.pii.policy",
    "PIIReport": "guardflow.pii.report",
    "detokenize": "guardflow.pii.masking",
    "mask_file": "guardflow.pii.masking",
    "mask_records": "guardflow.pii.masking",
    "mask_table": "guardflow.pii.masking",
    "mask_text": "guardflow.pii.masking",
    "scan_file": "guardflow.pii.masking",
    "scan_table": "guardflow.pii.masking",
}


def __getattr__(name: str) -> Any:
    """Import a masking name lazily from the module that defines it."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guardflow.pii' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
