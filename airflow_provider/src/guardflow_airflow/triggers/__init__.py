"""Airflow triggers of guardflow's deferrable operators (run by the triggerer, not a worker)."""

from __future__ import annotations

__all__: list[str] = []
