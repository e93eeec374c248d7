"""Statistics of repeated studies: medians with bootstrap CIs and paired comparisons.

A single study is an anecdote: the benchmark runs each strategy R times with different search
seeds and compares strategies repeat by repeat (repeat r of A against repeat r of the
reference, same seed offset). ``paired_comparison`` gives the median of the per-repeat ratios
with a bootstrap CI and the two-sided exact Wilcoxon signed-rank p-value of the log ratios.
With R pairs the smallest possible p-value is 2 / 2**R (0.25 for R = 3, 0.0625 for R = 5):
fewer than 6 repeats can never reach p < 0.05, whatever the data.

Example:
    >>> summarize([3.1, 2.4, 5.0]).median
    3.1
    >>> paired_comparison([2.0, 4.0, 6.0], [1.0, 1.0, 1.0]).p_value
    0.25
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["Paired", "Summary", "bootstrap_ci", "paired_comparison", "summarize"]

#: bootstrap resamples: enough for stable 2.5/97.5 percentiles
N_BOOT = 10_000


def bootstrap_ci(
    values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.median,
    level: float = 0.95, n_boot: int = N_BOOT, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic` over the finite `values` (NaN, NaN when none)."""
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return math.nan, math.nan
    if data.size == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    samples = data[rng.integers(0, data.size, size=(n_boot, data.size))]
    stats = np.apply_along_axis(statistic, 1, samples) if statistic is not np.median else np.median(samples, axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1.0 - alpha))


@dataclasses.dataclass(frozen=True)
class Summary:
    """Median of the finite values and its bootstrap 95% CI; `n` finite values of `n_total`."""

    median: float
    low: float
    high: float
    n: int
    n_total: int

    def text(self, fmt: str = ".3g") -> str:
        if not math.isfinite(self.median):
            return "n/a"
        return f"{self.median:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


def summarize(values: Sequence[float], seed: int = 0) -> Summary:
    """Median and bootstrap 95% CI of the median over the finite values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return Summary(math.nan, math.nan, math.nan, 0, len(values))
    low, high = bootstrap_ci(finite, seed=seed)
    return Summary(float(np.median(finite)), low, high, len(finite), len(values))


@dataclasses.dataclass(frozen=True)
class Paired:
    """A against the reference, repeat by repeat: median ratio A/ref with its bootstrap CI, and the
    two-sided exact Wilcoxon signed-rank p-value of log(A/ref) (NaN with fewer than 2 pairs or when
    every pair is equal)."""

    ratio: Summary
    p_value: float
    n_pairs: int
    #: how many pairs had A < reference
    n_better: int


def paired_comparison(a: Sequence[float], reference: Sequence[float], seed: int = 0) -> Paired:
    """Compare two equally long per-repeat series (pairs with a non-finite or non-positive member are dropped)."""
    if len(a) != len(reference):
        raise ValueError(f"paired series need the same repeats: {len(a)} values against {len(reference)}")
    pairs = [(float(x), float(y)) for x, y in zip(a, reference)
             if math.isfinite(float(x)) and math.isfinite(float(y)) and x > 0 and y > 0]
    ratios = [x / y for x, y in pairs]
    summary = summarize(ratios, seed=seed)
    logs = np.log(np.asarray(ratios)) if ratios else np.zeros(0)
    p_value = math.nan
    if len(pairs) >= 2 and np.any(logs != 0):
        from scipy.stats import wilcoxon

        p_value = float(wilcoxon(logs, alternative="two-sided", method="exact", zero_method="wilcox").pvalue)
    return Paired(summary, p_value, len(pairs), sum(1 for x, y in pairs if x < y))
