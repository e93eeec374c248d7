"""Can this benchmark tell searches apart? TPE against the null ("no search"), repeat by repeat.

The null draws one architecture at random and trains it (``searchers/null.py``). If TPE, the
search the paper recommends, does not beat it on the test LDOS RMSE with an exact paired test
(two-sided exact Wilcoxon signed-rank test of the per-repeat ratios, ``p <= ALPHA``), the data
cannot show whether any search helps, and every "A beats B" or target line would be seed noise:
the report then says "not decidable" instead of stating them. With R repeats the smallest
possible p is 2 / 2**R: 6 repeats all in TPE's favour give p = 2/64 = 0.031; 5 cannot decide.

Example:
    >>> verdict = check_verdict(runs)          # runs: one row per study (strategy, repeat, test_ldos_rmse)
    >>> print(verdict.text)
    >>> lines = strategy_claims(table, ["tpe"], verdict)   # [] unless the verdict decides
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from hpsearch.bench.comparison import ref_key
from hpsearch.bench.stats import paired_comparison

__all__ = ["ALPHA", "DECIDABLE", "NOT_DECIDABLE", "NULL_LABEL", "SEARCH_LABEL", "Verdict", "check_verdict",
           "strategy_claims"]

#: the significance level of the verdict and of the strategy claims
ALPHA = 0.05
#: the search that must beat the null, and the null's label in the table
SEARCH_LABEL = "tpe"
NULL_LABEL = "no search"
DECIDABLE = "decidable"
NOT_DECIDABLE = "not decidable"
#: the test metric the verdict pairs: the low-noise one (see hpsearch.bench.comparison)
METRIC = "test_ldos_rmse"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """TPE against the null over paired repeats on the test LDOS RMSE; `missing` says why it could
    not be checked (a strategy or its numbers absent)."""

    n_pairs: int
    #: repeats in which TPE's test LDOS RMSE was below the null's
    n_better: int
    p_value: float
    #: median over repeats of TPE's / the null's test LDOS RMSE
    ratio: float
    missing: str | None = None
    alpha: float = ALPHA
    search: str = SEARCH_LABEL
    null: str = NULL_LABEL

    @property
    def decidable(self) -> bool:
        """TPE beat the null with p <= alpha (more repeats better than worse)."""
        return (self.missing is None and math.isfinite(self.p_value) and self.p_value <= self.alpha
                and 2 * self.n_better > self.n_pairs)

    @property
    def state(self) -> str:
        return DECIDABLE if self.decidable else NOT_DECIDABLE

    @property
    def smallest_p(self) -> float:
        """The smallest two-sided exact p-value these many pairs can give."""
        return 2.0 / 2**self.n_pairs if self.n_pairs else math.nan

    def _evidence(self) -> str:
        ratio = f"{self.ratio:.3g}" if math.isfinite(self.ratio) else "n/a"
        if math.isfinite(self.p_value):
            p = f"{self.p_value:.3g} {'<=' if self.p_value <= self.alpha else '>'} {self.alpha:g}"
        else:
            p = "n/a (fewer than 2 pairs, or all equal)"
        return (f"{self.search} beat the null ({self.null}) in {self.n_better} of {self.n_pairs} repeat(s) on the "
                f"test LDOS RMSE (median ratio {ratio}; exact two-sided Wilcoxon signed-rank p = {p})")

    @property
    def text(self) -> str:
        """One line: decidable or not, and why."""
        if self.missing is not None:
            return f"{NOT_DECIDABLE}: {self.missing}"
        if self.decidable:
            return f"{DECIDABLE}: {self._evidence()}; this benchmark tells searches apart on this data"
        text = f"{NOT_DECIDABLE}: this benchmark cannot tell searches apart on this data: {self._evidence()}"
        if self.n_pairs and self.smallest_p > self.alpha:
            text += (f"; with {self.n_pairs} repeat(s) p cannot go below {self.smallest_p:.3g}: run 6 or more "
                     "(--repeats 6)")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "decidable": self.decidable, "state": self.state, "text": self.text,
                "smallest_p": self.smallest_p, "metric": METRIC, "test": "exact two-sided Wilcoxon signed-rank "
                "test of the per-repeat log ratios"}


def _series(runs: pd.DataFrame, label: str) -> pd.DataFrame:
    return runs[runs["strategy"] == label].sort_values("repeat") if "strategy" in runs else pd.DataFrame()


def check_verdict(runs: pd.DataFrame, search: str = SEARCH_LABEL, null: str = NULL_LABEL) -> Verdict:
    """The verdict from the per-study rows (strategy label, repeat, test_ldos_rmse)."""
    mine, theirs = _series(runs, search), _series(runs, null)
    if mine.empty or theirs.empty:
        absent = " and ".join(f"'{s}'" for s, f in ((search, mine), (null, theirs)) if f.empty)
        return Verdict(0, 0, math.nan, math.nan, missing=(
            f"the benchmark ran without {absent}, so it cannot say whether any search beats no search on this data: "
            "run both (strategies tpe and null) to get strategy claims"))
    if METRIC not in mine or METRIC not in theirs:
        return Verdict(0, 0, math.nan, math.nan, missing="the studies report no test LDOS RMSE (run them again)")
    common = sorted(set(mine["repeat"]) & set(theirs["repeat"]))
    a = list(mine[mine["repeat"].isin(common)][METRIC])
    b = list(theirs[theirs["repeat"].isin(common)][METRIC])
    paired = paired_comparison(a, b)
    if paired.n_pairs == 0:
        return Verdict(0, 0, math.nan, math.nan, missing=f"no repeat has a finite test LDOS RMSE for both {search} "
                       f"and {null}")
    return Verdict(paired.n_pairs, paired.n_better, paired.p_value, paired.ratio.median, search=search, null=null)


def _claim(row: Any, reference: str, alpha: float) -> str | None:
    key = ref_key(reference)
    p, ratio = row.get(f"ldos_p_vs_{key}", math.nan), row.get(f"ldos_ratio_vs_{key}", math.nan)
    if p is None or ratio is None or not (math.isfinite(p) and math.isfinite(ratio)) or p > alpha:
        return None
    better, worse = (row["strategy"], reference) if ratio < 1 else (reference, row["strategy"])
    return (f"{better} beats {worse} on the test LDOS RMSE ({row['strategy']} / {reference} = {ratio:.2f}, median of "
            f"{row['repeats']} paired repeats, Wilcoxon p = {p:.3g})")


def strategy_claims(table: pd.DataFrame, references: Sequence[str], verdict: Verdict) -> list[str]:
    """The "A beats B" lines (paired test LDOS RMSE, p <= alpha) when the verdict decides; [] otherwise.
    The last line counts the pairs with no difference shown."""
    if not verdict.decidable or table.empty:
        return []
    lines, undecided, seen = [], 0, set()
    for _, row in table.iterrows():
        for reference in references:
            pair = frozenset((str(row["strategy"]), reference))
            if row["strategy"] == reference or pair in seen:
                continue
            seen.add(pair)
            claim = _claim(row, reference, verdict.alpha)
            if claim is None:
                undecided += 1
            else:
                lines.append(claim)
    if undecided:
        lines.append(f"{undecided} other pair(s) of strategies: no difference shown at p <= {verdict.alpha:g}")
    return lines
