"""Airflow operators running guardflow steps."""

from __future__ import annotations

__all__: list[str] = []
