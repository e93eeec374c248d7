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
    """The paper's figure 3: best band-energy error so far against cumulative compute.

    Each study is ``{"strategy": str, "trials": DataFrame with columns core_seconds and
    band_energy_error_mev_per_atom, in trial order, "retrain_mean": float, "retrain_std": float}``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for study in studies:
        trials = study["trials"]
        cost = np.cumsum(np.nan_to_num(trials["core_seconds"].to_numpy(dtype=float)))
        error = trials["band_energy_error_mev_per_atom"].to_numpy(dtype=float)
        best = np.fmin.accumulate(np.where(np.isfinite(error), error, np.inf))
        shown = np.isfinite(best)
        line = ax.step(cost[shown], best[shown], where="post", alpha=0.6, label=study["strategy"])[0]
        if study.get("retrain_mean") is not None and len(cost):
            ax.errorbar(
                [cost[-1]], [study["retrain_mean"]], yerr=[study.get("retrain_std") or 0.0],
                fmt="o", color=line.get_color(), capsize=4,
            )
    ax.set_xscale("log")
    ax.set_xlabel("cumulative compute (core-seconds)")
    ax.set_ylabel("band-energy error (meV/atom)")
    ax.set_title("Error against compute (dots: winner retrained, mean ± std)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_architectures(winners: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """The paper's figure 6: the winning architectures side by side (layer widths as bars)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for column, winner in enumerate(winners):
        widths = [winner["n_in"], *winner["widths"], winner["n_out"]]
        for row, width in enumerate(widths):
            ax.barh(row, width, left=column * 1.1 * max(max(w["widths"] or [1]) for w in winners) - width / 2,
                    height=0.6, color="C%d" % column, alpha=0.8 if 0 < row < len(widths) - 1 else 0.35)
    ax.set_yticks([])
    ax.set_xticks([i * 1.1 * max(max(w["widths"] or [1]) for w in winners) for i in range(len(winners))])
    ax.set_xticklabels([f"{w['strategy']}\n{'-'.join(map(str, w['widths']))}" for w in winners], fontsize=8)
    ax.invert_yaxis()
    ax.set_title("Winning architectures (input at the top; bar length = layer width)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def architecture_in_words(n_in: int, widths: Sequence[int], activations: Sequence[str] | str, n_out: int) -> str:
    """E.g. '91 -> 64 (ReLU) -> 64 (ReLU) -> 11'."""
    acts = [activations] * len(widths) if isinstance(activations, str) else list(activations)
    inner = " -> ".join(f"{w} ({a})" for w, a in zip(widths, acts))
    return f"{n_in} -> {inner} -> {n_out}" if widths else f"{n_in} -> {n_out}"
