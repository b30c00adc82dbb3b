"""Data drift: Evidently's statistics, computed natively, and reusable reference profiles.

:func:`check_drift` compares a reference dataset with current data column by column and returns a
:class:`DriftReport`. The native engine (default) computes Evidently 0.7's default tests exactly:
the test is chosen per column from its type, its number of unique values and the reference size
(K-S, chi-square or two-proportion z-test up to 1,000 reference rows; normed Wasserstein or
Jensen-Shannon distance above), with Evidently's binning, thresholds and dataset rule. Beyond
Evidently: a true two-sample chi-square test (``chisquare_2sample``), the Hellinger distance, and
:class:`ReferenceProfile`, the reference's statistics saved once and reused on every run.
``engine="evidently"`` runs Evidently itself (``evidently`` extra) on the same inputs.

Examples:
    >>> from guardflow.audit import MemoryAuditSink
    >>> from guardflow.drift import check_drift
    >>> reference = [{"x": float(i % 50), "c": "ab"[i % 2]} for i in range(200)]
    >>> current = [{"x": float(i % 50) + 25.0, "c": "ab"[i % 2]} for i in range(200)]
    >>> report = check_drift(reference, current, audit_sink=MemoryAuditSink())
    >>> report.drifted_columns
    ['x']
"""

from __future__ import annotations

from guardflow.drift._columns import ColumnProfile
from guardflow.drift.config import METHODS, ColumnOverride, DriftConfig, MethodName
from guardflow.drift.engine import check_drift
from guardflow.drift.profile import ReferenceProfile, build_profile
from guardflow.drift.report import ColumnDrift, DriftReport

__all__ = [
    "METHODS",
    "ColumnDrift",
    "ColumnOverride",
    "ColumnProfile",
    "DriftConfig",
    "DriftReport",
    "MethodName",
    "ReferenceProfile",
    "build_profile",
    "check_drift",
]
