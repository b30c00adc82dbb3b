"""Airflow hooks mapping connections onto guardflow configuration objects."""

from __future__ import annotations

__all__: list[str] = []
