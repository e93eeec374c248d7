"""The comparison table over repeats: per strategy, medians with bootstrap 95% CIs of the retrained
winners' test band-energy error and test LDOS RMSE, compute, and paired ratios against reference
strategies on both test metrics; the split's ridge and constant-mean baselines as rows below.

The test LDOS RMSE is the low-noise metric: one network's band-energy error is mostly the sign
and size of its total-DOS bias, which the seed sets. The baselines are one fit each (no repeats,
no CI): a strategy whose test LDOS RMSE is not below ridge's found nothing architecture can explain.

Example:
    >>> table = comparison_over_repeats(runs, ["tpe"])
    >>> print(markdown_over_repeats(table, ["tpe"], baselines=report))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from hpsearch.bench.stats import paired_comparison, summarize

if TYPE_CHECKING:
    from hpsearch.model.baselines import BaselineReport

__all__ = ["PAIRED_METRICS", "SUMMARIZED", "comparison_over_repeats", "markdown_over_repeats", "ref_key",
           "rows_over_repeats"]

#: columns of the per-study rows summarised over repeats (median and bootstrap CI)
SUMMARIZED = ("test_error_mev_per_atom", "test_ldos_rmse", "best_val_error_mev_per_atom", "search_core_s",
              "retrain_core_s", "wall_seconds")
#: test metrics compared with each reference repeat by repeat: (column, prefix of the ratio, p and
#: better-than columns; "" keeps the band-energy error's original names error_ratio_vs_, p_vs_, better_than_)
PAIRED_METRICS = (("test_error_mev_per_atom", ""), ("test_ldos_rmse", "ldos_"))


def ref_key(reference: str) -> str:
    """A reference strategy's label as part of a column name (``tpe + asha`` -> ``tpe_asha``)."""
    return reference.replace(" + ", "_").replace(" ", "_").replace("-", "_")


def _values(frame: pd.DataFrame, column: str) -> list[float]:
    return list(frame[column]) if column in frame else [math.nan] * len(frame)


def _paired_columns(mine: pd.DataFrame, theirs: pd.DataFrame, key: str) -> dict[str, Any]:
    """Ratio (median, CI), Wilcoxon p and wins against one reference, for every paired metric."""
    row: dict[str, Any] = {}
    for column, prefix in PAIRED_METRICS:
        paired = paired_comparison(_values(mine, column), _values(theirs, column))
        ratio = f"{prefix or 'error_'}ratio_vs_{key}"
        row.update({ratio: paired.ratio.median, f"{ratio}_ci_low": paired.ratio.low,
                    f"{ratio}_ci_high": paired.ratio.high, f"{prefix}p_vs_{key}": paired.p_value,
                    f"{prefix}better_than_{key}": paired.n_better})
    return row


def comparison_over_repeats(runs: pd.DataFrame, references: Sequence[str] = ("tpe",)) -> pd.DataFrame:
    """Per strategy: medians with bootstrap 95% CIs over repeats, and paired comparisons with each reference."""
    table = []
    for strategy, group in runs.groupby("strategy", sort=False):
        group = group.sort_values("repeat")
        row: dict[str, Any] = {"strategy": strategy, "repeats": len(group)}
        for column in SUMMARIZED:
            s = summarize(_values(group, column))
            row.update({column: s.median, f"{column}_ci_low": s.low, f"{column}_ci_high": s.high})
        for reference in references:
            ref = runs[runs["strategy"] == reference].sort_values("repeat")
            common = sorted(set(group["repeat"]) & set(ref["repeat"]))
            mine, theirs = group[group["repeat"].isin(common)], ref[ref["repeat"].isin(common)]
            key = ref_key(reference)
            if strategy == reference or not common:
                same = 1.0 if strategy == reference else math.nan
                row.update({f"error_ratio_vs_{key}": same, f"ldos_ratio_vs_{key}": same, f"p_vs_{key}": math.nan,
                            f"ldos_p_vs_{key}": math.nan, f"speedup_vs_{key}": same})
                continue
            row.update(_paired_columns(mine, theirs, key))
            cost = paired_comparison(list(theirs["search_core_s"]), list(mine["search_core_s"]))
            row[f"speedup_vs_{key}"] = cost.ratio.median
        table.append(row)
    return pd.DataFrame(table)


def _ci(row: Any, column: str, fmt: str = ".3g") -> str:
    """``median [low, high]``; the value alone without a CI; n/a when missing."""
    value = row.get(column, math.nan)
    if value is None or not math.isfinite(value):
        return "n/a"
    low, high = row.get(f"{column}_ci_low", math.nan), row.get(f"{column}_ci_high", math.nan)
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:{fmt}}"
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def _number(value: Any, fmt: str) -> str:
    return f"{value:{fmt}}" if value is not None and math.isfinite(value) else "n/a"


def _reference_cells(row: Any, reference: str) -> list[str]:
    if row["strategy"] == reference:
        return ["1 (reference)", "", "1 (reference)", "", ""]
    key = ref_key(reference)
    speed = row.get(f"speedup_vs_{key}", math.nan)
    return [_ci(row, f"error_ratio_vs_{key}", ".2f"), _number(row.get(f"p_vs_{key}", math.nan), ".3g"),
            _ci(row, f"ldos_ratio_vs_{key}", ".2f"), _number(row.get(f"ldos_p_vs_{key}", math.nan), ".3g"),
            f"{speed:.1f}x" if math.isfinite(speed) else "n/a"]


def _baseline_rows(baselines: BaselineReport, references: Sequence[str]) -> list[list[str]]:
    """One row per baseline: its test band-energy error and test LDOS RMSE, validation error; no
    repeats, CIs, compute or paired comparisons (one closed-form fit on the benchmark's split)."""
    rows = []
    for predictor in ("ridge", "constant"):
        cells = [f"{predictor} (baseline)", "-",
                 _number(baselines.band_energy_error_mev_per_atom(predictor, "test"), ".3g"),
                 _number(baselines.ldos_rmse(predictor, "test"), ".3g"),
                 _number(baselines.band_energy_error_mev_per_atom(predictor, "validation"), ".3g"), "-", "-"]
        rows.append(cells + ["-"] * (5 * len(references)))
    return rows


def rows_over_repeats(table: pd.DataFrame, references: Sequence[str] = ("tpe",),
                      baselines: BaselineReport | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of strings: medians [95% CI] over repeats, paired comparisons with the
    references on test error and test LDOS RMSE; the baselines' rows last when given."""
    head = ["strategy", "repeats", "test error (meV/atom)", "test LDOS RMSE", "best validation error",
            "search compute (core-s)", "retrain compute (core-s)"]
    for reference in references:
        head += [f"test error / {reference} (paired)", f"Wilcoxon p vs {reference}",
                 f"test LDOS RMSE / {reference} (paired)", f"Wilcoxon p (LDOS) vs {reference}",
                 f"speed-up vs {reference}"]
    rows = []
    for _, row in table.iterrows():
        cells = [str(row["strategy"]), str(row["repeats"]), _ci(row, "test_error_mev_per_atom"),
                 _ci(row, "test_ldos_rmse"), _ci(row, "best_val_error_mev_per_atom"), _ci(row, "search_core_s", ".0f"),
                 _ci(row, "retrain_core_s", ".0f")]
        for reference in references:
            cells += _reference_cells(row, reference)
        rows.append(cells)
    if baselines is not None:
        rows += _baseline_rows(baselines, references)
    return head, rows


def markdown_over_repeats(table: pd.DataFrame, references: Sequence[str] = ("tpe",),
                          baselines: BaselineReport | None = None) -> str:
    """The comparison as Markdown (see :func:`rows_over_repeats`)."""
    head, rows = rows_over_repeats(table, references, baselines)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)
