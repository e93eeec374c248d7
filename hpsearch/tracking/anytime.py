"""The anytime plot of repeated studies: best validation objective so far against cumulative compute.

One line per strategy: the median over repeats of the best validation error found so far, on a
common log grid of search compute, with the band between the lowest and highest repeat; at the
right, the retrained winners' test error (median with its bootstrap 95% CI) as a dot. The line
is what the search saw (validation), the dot what was reported (test, retrained).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.tracking.plots import _pyplot


def best_so_far(core_seconds: Sequence[float], errors: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative compute, best finite error so far) of one study's trials in their order."""
    cost = np.cumsum(np.nan_to_num(np.asarray(core_seconds, dtype=float)))
    error = np.asarray(errors, dtype=float)
    best = np.fmin.accumulate(np.where(np.isfinite(error), error, np.inf))
    return cost, best


def _on_grid(cost: np.ndarray, best: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Step function `best` (changes at `cost`) read at `grid`; NaN before the first finite value."""
    index = np.searchsorted(cost, grid, side="right") - 1
    values = np.where(index >= 0, best[np.clip(index, 0, None)], np.inf)
    return np.where(np.isfinite(values), values, np.nan)


def plot_anytime(strategies: Sequence[dict[str, Any]], path: str | Path,
                 validation_label: str = "band-energy error (meV/atom)", test_label: str | None = None) -> Path:
    """Figure 3 over repeats. Each strategy: ``{"strategy": str, "runs": [(core_seconds, val_errors), ...],
    "test": (median, low, high) or None}``. ``test_label``: the test dots go into a second panel
    with their own axis (when the test metric has other units than the validation one)."""
    plt = _pyplot()
    if test_label is None:
        fig, ax = plt.subplots(figsize=(8, 5))
        test_ax = ax
    else:
        fig, (ax, test_ax) = plt.subplots(1, 2, figsize=(13, 5), sharex=True)
    finals = [c for s in strategies for cost, _ in s["runs"] for c in [float(np.nansum(cost))] if c > 0]
    lowest = [float(np.nanmin(np.asarray(cost, dtype=float)[np.asarray(cost, dtype=float) > 0]))
              for s in strategies for cost, _ in s["runs"] if np.any(np.asarray(cost, dtype=float) > 0)]
    if not finals:
        ax.text(0.5, 0.5, "no finished trials", ha="center", transform=ax.transAxes)
    else:
        grid = np.geomspace(max(min(lowest), 1e-3), max(finals), 200)
        for number, study in enumerate(strategies):
            color = f"C{number % 10}"
            curves = [_on_grid(*best_so_far(cost, errors), grid) for cost, errors in study["runs"]]
            if not curves:
                continue
            stack = np.vstack(curves)
            spent = [float(np.nansum(cost)) for cost, _ in study["runs"]]
            # where every repeat has a result and within the strategy's budget: the median of
            # non-increasing curves is then non-increasing
            seen = np.isfinite(stack).all(axis=0) & (grid <= max(spent) * (1 + 1e-9))
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    median = np.nanmedian(stack, axis=0)
                    low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
            n = len(curves)
            ax.plot(grid[seen], median[seen], color=color, label=f"{study['strategy']} (validation, {n} repeats)")
            ax.fill_between(grid[seen], low[seen], high[seen], color=color, alpha=0.15, linewidth=0)
            finals = [float(np.nanmin(np.where(np.isfinite(e := np.asarray(errors, dtype=float)), e, np.nan)))
                      if np.isfinite(np.asarray(errors, dtype=float)).any() else np.nan for _, errors in study["runs"]]
            if np.isfinite(finals).any():  # the search's final pick (visible also for a training-free search)
                ax.plot([float(np.median(spent))], [float(np.nanmedian(finals))], "s", color=color, ms=6)
            test = study.get("test")
            if test is not None and np.isfinite(test[0]):
                x = float(np.median(spent))
                test_ax.errorbar([x], [test[0]], yerr=[[test[0] - test[1]], [test[2] - test[0]]], fmt="o",
                                 mfc="white", color=color, capsize=4, label=study["strategy"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cumulative search compute (core-seconds)")
    ax.set_ylabel(f"validation {validation_label}")
    if test_label is None:
        ax.set_title("Best validation error so far: median over repeats, band min-max; squares: the final pick\n"
                     "open dots: retrained winner's test error, median [95% CI]", fontsize=10)
    else:
        ax.set_title("Best validation objective so far: median over repeats, band min-max;\n"
                     "squares: the final pick", fontsize=10)
        test_ax.set_yscale("log")
        test_ax.set_xlabel("search compute per study (core-seconds, median)")
        test_ax.set_ylabel(f"test {test_label}")
        test_ax.set_title("The retrained winners on the test snapshots: median [95% CI] over repeats", fontsize=10)
    if finals:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
