"""Rank statistics: Kendall's tau-b between two rankings (e.g. NASWOT score vs trained error).

tau-b = (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)), n0 = n (n - 1) / 2, where
ties_x counts the pairs tied in x (tied in both count in both). -1: opposite orders, 1: same.

Example:
    >>> kendall_tau([1, 2, 3], [10, 30, 20])
    0.333...
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from hpsearch.errors import DataError

__all__ = ["KendallResult", "kendall_tau", "kendall_test"]


@dataclasses.dataclass(frozen=True)
class KendallResult:
    """Kendall tau-b, its two-sided p-value (no correlation as the null), and the sample size."""

    tau: float
    p_value: float
    n: int


def _validated(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.size != b.size:
        raise DataError(f"Kendall tau needs two sequences of the same length, got {a.size} and {b.size}")
    if a.size < 2:
        raise DataError(f"Kendall tau needs at least 2 pairs, got {a.size}")
    bad = int((~np.isfinite(a)).sum() + (~np.isfinite(b)).sum())
    if bad:
        raise DataError(f"Kendall tau got {bad} non-finite values (NaN or inf): drop those pairs first")
    for name, values in (("x", a), ("y", b)):
        if np.all(values == values[0]):
            raise DataError(f"Kendall tau is undefined: all {values.size} values of {name} are equal")
    return a, b


def kendall_tau(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b of paired values (handles ties); DataError if undefined."""
    return kendall_test(x, y).tau


def kendall_test(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> KendallResult:
    """Kendall's tau-b with its p-value (scipy's exact test for small n without ties)."""
    from scipy.stats import kendalltau

    a, b = _validated(x, y)
    result = kendalltau(a, b, variant="b")
    tau, p_value = float(result.statistic), float(result.pvalue)
    if not math.isfinite(tau):  # pragma: no cover - excluded by the validation above
        raise DataError(f"Kendall tau is undefined for these values (got {tau})")
    return KendallResult(tau=tau, p_value=p_value, n=int(a.size))
