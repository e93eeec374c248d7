"""Figures that people would rather look at than tables (matplotlib, written to PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_error_vs_compute(studies: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """The paper's figure 3: best validation error so far against cumulative compute.

    Each study is ``{"strategy": str, "trials": DataFrame with columns core_seconds and
    band_energy_error_mev_per_atom, in trial order, "retrain_mean": float, "retrain_std": float}``.
    The curves are the trials' errors on the validation snapshots (what the search minimised);
    the dots are the winner retrained with new seeds (mean +- std), which is why they can lie
    far above the curve's end. A study with one trained trial (NASWOT) is a point, not a line.
    """
    plt = _pyplot()
    fig = error_vs_compute_figure(studies)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def error_vs_compute_figure(studies: Sequence[dict[str, Any]]) -> Any:
    """The matplotlib figure of :func:`plot_error_vs_compute` (not saved, not closed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 6.5))
    for index, study in enumerate(studies):
        trials = study["trials"]
        cost = np.cumsum(np.nan_to_num(trials["core_seconds"].to_numpy(dtype=float)))
        error = trials["band_energy_error_mev_per_atom"].to_numpy(dtype=float)
        best = np.fmin.accumulate(np.where(np.isfinite(error), error, np.inf))
        shown = np.isfinite(best)
        color = f"C{index % 10}"
        label = f"{study['strategy']}: best validation error so far"
        if shown.sum() > 1:
            xs, ys = np.append(cost[shown], cost[-1]), np.append(best[shown], best[shown][-1])
            ax.step(xs, ys, where="post", color=color, alpha=0.7, label=label)
            ax.plot(xs[-1:], ys[-1:], marker="|", markersize=10, color=color)
        elif shown.any():
            ax.plot(cost[-1:], best[shown][-1:], marker="D", markersize=8, linestyle="none", color=color, label=label)
        if study.get("retrain_mean") is not None and len(cost):
            ax.errorbar(
                [cost[-1]], [study["retrain_mean"]], yerr=[study.get("retrain_std") or 0.0],
                fmt="o", color=color, capsize=4, markerfacecolor="white",
                label=f"{study['strategy']}: winner retrained (mean ± std)",
            )
    ax.set_xscale("log")
    ax.set_xlabel("cumulative compute of the search (core-seconds)")
    ax.set_ylabel("band-energy error (meV/atom)")
    ax.set_title("Error against compute\nlines: best validation error of the search; circles: winner retrained")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def plot_architectures(winners: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """The paper's figure 6: the winning architectures side by side (layer widths as bars).

    Each column is one winner, input (descriptors) at the top, output (LDOS energies) at the
    bottom; the columns are spaced by the widest layer of any network, so bars never overlap.
    """
    plt = _pyplot()
    fig = architectures_figure(winners)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def architectures_figure(winners: Sequence[dict[str, Any]]) -> Any:
    """The matplotlib figure of :func:`plot_architectures` (not saved, not closed)."""
    from matplotlib.patches import Patch

    plt = _pyplot()
    layers = [[w["n_in"], *w["widths"], w["n_out"]] for w in winners]
    step = 1.25 * max((max(widths) for widths in layers), default=1)
    depth = max((len(widths) for widths in layers), default=2)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(winners)), 1.2 + 0.55 * depth))
    for column, (winner, widths) in enumerate(zip(winners, layers)):
        acts = winner.get("activations") or []
        acts = [acts] * len(winner["widths"]) if isinstance(acts, str) else list(acts)
        for row, width in enumerate(widths):
            hidden = 0 < row < len(widths) - 1
            ax.barh(row, width, left=column * step - width / 2, height=0.6, color=f"C{column % 10}",
                    alpha=0.85 if hidden else 0.3, edgecolor="black", linewidth=0.4)
            text = f"{width}" + (f" {acts[row - 1]}" if hidden and row - 1 < len(acts) else "")
            ax.text(column * step, row, text, ha="center", va="center", fontsize=7)
    ax.set_yticks([])
    ax.set_xticks([i * step for i in range(len(winners))])
    ax.set_xticklabels([f"{w['strategy']}\n{'-'.join(map(str, w['widths']))}" for w in winners], fontsize=8)
    ax.set_xlim(-step / 2, (len(winners) - 0.5) * step)
    ax.invert_yaxis()
    ax.legend(handles=[Patch(facecolor="grey", alpha=0.85, edgecolor="black", label="hidden layer: width, activation"),
                       Patch(facecolor="grey", alpha=0.3, edgecolor="black",
                             label="input (descriptors, top) / output (LDOS energies, bottom)")],
              fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    ax.set_title("Winning architectures (bar length = layer width)")
    fig.tight_layout()
    return fig


def architecture_in_words(n_in: int, widths: Sequence[int], activations: Sequence[str] | str, n_out: int) -> str:
    """E.g. '91 -> 64 (ReLU) -> 64 (ReLU) -> 11'."""
    acts = [activations] * len(widths) if isinstance(activations, str) else list(activations)
    inner = " -> ".join(f"{w} ({a})" for w, a in zip(widths, acts))
    return f"{n_in} -> {inner} -> {n_out}" if widths else f"{n_in} -> {n_out}"
