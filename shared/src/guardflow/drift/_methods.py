"""The drift tests, computed exactly as Evidently 0.7.23 computes them, from column statistics.

Each test takes the reference and current :class:`~guardflow.drift._columns.ColumnProfile` of one
column (nulls, NaN and infinities already dropped) and returns a score. The formulas, binning and
tie rules follow ``evidently.legacy.calculations.stattests``; sorted values and value counts stand
in for the pandas Series Evidently passes around, which gives the same numbers without a pass per
row in Python. Where Evidently iterates over a Python ``set`` of categories (an order that changes
between processes), categories are taken in sorted order instead: sums may differ in the last bit.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Literal

from guardflow._optional import require
from guardflow.drift._columns import ColumnProfile

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

__all__ = [
    "ALLOWED_TYPES",
    "DEFAULT_THRESHOLDS",
    "P_VALUE_METHODS",
    "ColumnType",
    "default_method",
    "drifted",
    "run_method",
]

ColumnType = Literal["num", "cat"]

DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "chisquare_2sample": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
    "hellinger": 0.1,
}
"""Default threshold of each test (Evidently's ``StatTest.default_threshold``)."""

P_VALUE_METHODS = frozenset({"ks", "chisquare", "z", "chisquare_2sample"})
"""Tests whose score is a p-value: drift when it is below the threshold."""

ALLOWED_TYPES: dict[str, frozenset[str]] = {
    "ks": frozenset({"num"}),
    "wasserstein": frozenset({"num"}),
    "chisquare": frozenset({"cat"}),
    "z": frozenset({"cat"}),
    "chisquare_2sample": frozenset({"cat", "num"}),
    "jensenshannon": frozenset({"cat", "num"}),
    "psi": frozenset({"cat", "num"}),
    "hellinger": frozenset({"cat", "num"}),
}
"""Column types each test accepts when asked for by name (Evidently's ``allowed_feature_types``)."""

_SMALL_REFERENCE = 1000
_FEW_VALUES = 5
_BINARY = 2
_BINNED_UNIQUE = 20


def default_method(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> str:
    """Choose a column's test as Evidently's ``_get_default_stattest`` does.

    The unique count is taken over reference and current together; the size switch is on the
    reference's non-null count (Evidently drops nulls before choosing).
    """
    n_values = _joint_unique(ref, cur)
    if ref.count <= _SMALL_REFERENCE:
        if column_type == "num" and n_values > _FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > _BINARY else "z"
    if column_type == "num" and n_values > _FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def drifted(method: str, score: float, threshold: float) -> bool:
    """Apply the test's drift rule: K-S ``p <= t``; other p-values ``p < t``; distances ``>= t``."""
    if method == "ks":
        return score <= threshold
    if method in P_VALUE_METHODS:
        return score < threshold
    return score >= threshold


def run_method(
    method: str, ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType
) -> float:
    """Compute ``method``'s score for one column.

    Args:
        method: A test name from :data:`DEFAULT_THRESHOLDS`.
        ref: Reference statistics (at least one value).
        cur: Current statistics (at least one value).
        column_type: ``"num"`` or ``"cat"``, which selects the binning.

    Returns:
        The p-value or distance, as a Python float.
    """
    with warnings.catch_warnings():
        # unseen categories give chi-square a zero expected count (Evidently warns, p = 0)
        warnings.simplefilter("ignore", RuntimeWarning)
        np = require("numpy", "drift")
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(_METHODS[method](ref, cur, column_type))


def _joint_unique(ref: ColumnProfile, cur: ColumnProfile) -> int:
    """Distinct values of both sides together, exact up to 6 (all the selection rules need)."""
    larger = max(ref.n_unique, cur.n_unique)
    if larger > _FEW_VALUES:
        return larger  # already past every threshold: skip the union of large value sets
    keys, _, _ = _aligned_counts(ref, cur)
    return len(keys)


def _aligned_counts(ref: ColumnProfile, cur: ColumnProfile) -> tuple[Any, Any, Any]:
    """Return the sorted union of distinct values and each side's count of each."""
    np = require("numpy", "drift")
    ref_keys, ref_counts = ref.unique_counts()
    cur_keys, cur_counts = cur.unique_counts()
    if ref.kind == "numeric":
        keys = np.union1d(ref_keys, cur_keys)
        ref_at = np.searchsorted(keys, ref_keys)
        cur_at = np.searchsorted(keys, cur_keys)
    else:
        pa = require("pyarrow", "drift")
        pc = require("pyarrow.compute", "drift")
        union = pc.unique(pa.concat_arrays([ref_keys, cur_keys]))
        keys = pc.take(union, pc.sort_indices(union))
        ref_at = pc.index_in(ref_keys, value_set=keys).to_numpy()
        cur_at = pc.index_in(cur_keys, value_set=keys).to_numpy()
    ref_aligned = np.zeros(len(keys), dtype=np.int64)
    cur_aligned = np.zeros(len(keys), dtype=np.int64)
    ref_aligned[ref_at] = ref_counts
    cur_aligned[cur_at] = cur_counts
    return keys, ref_aligned, cur_aligned


def _histogram(sorted_values: FloatArray, edges: FloatArray) -> Any:
    """``numpy.histogram(values, edges)[0]`` for sorted values (numpy searches the same way)."""
    np = require("numpy", "drift")
    cum = np.concatenate(
        (
            sorted_values.searchsorted(edges[:-1], "left"),
            sorted_values.searchsorted(edges[-1:], "right"),
        )
    )
    return np.diff(cum)


def _sturges_edges(lo: float, hi: float, size: int, integer: bool) -> FloatArray:
    """``numpy.histogram_bin_edges(x, "sturges")`` from x's min, max, size and integer dtype."""
    np = require("numpy", "drift")
    width = (hi - lo) / (np.log2(size) + 1.0)
    if lo == hi:  # numpy widens an empty range by half a unit on each side
        lo, hi = lo - 0.5, hi + 0.5
    if width and integer and width < 1:
        width = 1
    n_bins = int(np.ceil((hi - lo) / width)) if width else 1
    edges: FloatArray = np.linspace(lo, hi, n_bins + 1, endpoint=True, dtype=np.float64)
    return edges


def _binned(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> tuple[Any, Any]:
    """Evidently's ``get_binned_data`` shares (before zero filling)."""
    if column_type == "num" and ref.kind == "numeric" and ref.n_unique > _BINNED_UNIQUE:
        assert ref.values is not None and cur.values is not None
        lo = min(ref.values[0], cur.values[0])
        hi = max(ref.values[-1], cur.values[-1])
        edges = _sturges_edges(lo, hi, ref.count + cur.count, ref.integer and cur.integer)
        return _histogram(ref.values, edges) / ref.count, _histogram(cur.values, edges) / cur.count
    _, ref_counts, cur_counts = _aligned_counts(ref, cur)
    return ref_counts / ref.count, cur_counts / cur.count


def _fill_zeroes(percents: Any) -> None:
    np = require("numpy", "drift")
    smallest = percents[percents != 0].min()
    np.place(percents, percents == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)


def _ks(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    stats = require("scipy.stats", "drift")
    return float(stats.ks_2samp(ref.values, cur.values)[1])


def _wasserstein(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    """``scipy.stats.wasserstein_distance`` / max(std(reference), 0.001), from sorted values."""
    assert ref.values is not None and cur.values is not None
    return _w1_sorted(ref.values, cur.values) / max(ref.std, 0.001)


def _w1_sorted(u: FloatArray, v: FloatArray) -> float:
    """Wasserstein-1 distance of two sorted samples, without a merge or a binary search.

    W1 is the integral of |F_u^-1(t) - F_v^-1(t)| over t in (0, 1]. Both quantile functions are
    step functions with steps at i/n and j/m; measured in units of 1/(n m) the steps are the
    integers i m and j n, so which values face each other on each piece, and each piece's length,
    follow from integer arithmetic (exact in float64 while n m < 2**53). Pieces that end on u's
    steps and pieces that end on v's steps are summed separately (ties: u's step first, which
    leaves v's piece empty). scipy integrates |F_u - F_v| over x instead, the same area; the
    two sums round differently, within a few 1e-16 relative.
    """
    np = require("numpy", "drift")
    n, m = u.size, v.size
    if float(n) * m >= 2.0**53:
        stats = require("scipy.stats", "drift")
        return float(stats.wasserstein_distance(u, v))
    if n == m:  # every piece has length 1/n and faces u[i] with v[i]
        return float(np.mean(np.abs(u - v)))
    u_steps = np.arange(1, n + 1, dtype=np.float64) * m
    v_steps = np.arange(1, m + 1, dtype=np.float64) * n
    v_at_u = np.ceil(u_steps / n)  # v's quantile index + 1 on the piece ending at u's step
    u_lengths = np.minimum(m, u_steps - (v_at_u - 1) * n)
    u_below_v = np.floor(v_steps / m)  # u's index on the piece ending at v's step (if not empty)
    v_lengths = np.minimum(n, v_steps - u_below_v * m)
    u_index = np.minimum(u_below_v.astype(np.intp), n - 1)  # empty pieces may point past u
    total = np.dot(u_lengths, np.abs(u - v[v_at_u.astype(np.intp) - 1]))
    total += np.dot(v_lengths, np.abs(u[u_index] - v))
    return float(total / (float(n) * m))


def _chisquare(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    """Evidently's chi-square: current counts against reference counts scaled to the current."""
    stats = require("scipy.stats", "drift")
    _, ref_counts, cur_counts = _aligned_counts(ref, cur)
    k_norm = cur.count / ref.count
    return float(stats.chisquare(cur_counts, ref_counts * k_norm)[1])


def _chisquare_2sample(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    """Pearson's chi-square test of homogeneity on the 2 x k table (no Yates correction)."""
    np = require("numpy", "drift")
    stats = require("scipy.stats", "drift")
    _, ref_counts, cur_counts = _aligned_counts(ref, cur)
    if len(ref_counts) < _BINARY:
        return 1.0  # one category on both sides: the samples cannot differ
    table = np.vstack((ref_counts, cur_counts))
    return float(stats.chi2_contingency(table, correction=False)[1])


def _z(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    """Evidently's two-proportion z-test: the first sorted category against all others."""
    stats = require("scipy.stats", "drift")
    _, ref_counts, cur_counts = _aligned_counts(ref, cur)
    ref_seen, cur_seen = ref_counts > 0, cur_counts > 0
    if ref_seen.sum() == 1 and cur_seen.sum() == 1 and bool((ref_seen & cur_seen).any()):
        return 1.0
    n1, n2 = ref.count, cur.count
    p1 = float(n1 - int(ref_counts[0])) / n1
    p2 = float(n2 - int(cur_counts[0])) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    if spread == 0:  # one value on both sides, the case above; kept out of a ZeroDivisionError
        return 1.0
    z_stat = (p1 - p2) / spread
    return float(2 * (1 - stats.norm.cdf(abs(z_stat))))


def _jensenshannon(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    distance = require("scipy.spatial.distance", "drift")
    ref_p, cur_p = _binned(ref, cur, column_type)
    return float(distance.jensenshannon(ref_p, cur_p, None))


def _psi(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    np = require("numpy", "drift")
    ref_p, cur_p = _binned(ref, cur, column_type)
    _fill_zeroes(ref_p)
    _fill_zeroes(cur_p)
    return float(np.sum((ref_p - cur_p) * np.log(ref_p / cur_p)))


def _hellinger(ref: ColumnProfile, cur: ColumnProfile, column_type: ColumnType) -> float:
    np = require("numpy", "drift")
    if column_type == "cat":
        _, ref_counts, cur_counts = _aligned_counts(ref, cur)
        total = float(np.sum(np.sqrt((ref_counts / ref.count) * (cur_counts / cur.count))))
        return math.sqrt(1 - float(np.clip(total, 0, 1)))
    assert ref.values is not None and cur.values is not None
    keys, _, _ = _aligned_counts(ref, cur)
    edges = _sturges_edges(keys[0], keys[-1], len(keys), ref.integer and cur.integer)
    h1 = _density(ref.values, edges)
    h2 = _density(cur.values, edges)
    bin_width = (edges.max() - edges.min()) / (len(edges) - 1)
    total = 0.0
    for p1, p2 in zip(h1.tolist(), h2.tolist(), strict=True):  # a few dozen bins at most
        total += math.sqrt(p1 * p2) * bin_width
    return math.sqrt(1 - float(np.clip(total, 0, 1)))


def _density(sorted_values: FloatArray, edges: FloatArray) -> Any:
    """``numpy.histogram(values, edges, density=True)[0]``."""
    np = require("numpy", "drift")
    counts = _histogram(sorted_values, edges)
    widths = np.array(np.diff(edges), float)
    return counts / widths / counts.sum()


_METHODS = {
    "ks": _ks,
    "chisquare": _chisquare,
    "chisquare_2sample": _chisquare_2sample,
    "z": _z,
    "wasserstein": _wasserstein,
    "jensenshannon": _jensenshannon,
    "psi": _psi,
    "hellinger": _hellinger,
}
