"""Files of a proxy study: the table (Markdown), every architecture (CSV), everything (JSON), and
the figure (Kendall tau with its 95 % CI per proxy; score against error for the best three).

Example:
    >>> files = write_study(study, "results/proxy_study")
    >>> print(markdown_table(study))
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.scoring.calibration import REGRET_KS, ProxyCalibration
from hpsearch.scoring.proxy_study import ProxyStudy

__all__ = ["calibration_table", "markdown_table", "plot_study", "write_study"]

log = logging.getLogger(__name__)


def _fmt(value: float, digits: int = 3, sign: bool = True) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _row(c: ProxyCalibration) -> list[str]:
    by_act = ", ".join(f"{a} {_fmt(t, 2)}" for a, t in sorted(c.tau_by_activation.items()))
    return [
        c.name, f"{_fmt(c.tau)} [{_fmt(c.tau_ci[0], 2)}, {_fmt(c.tau_ci[1], 2)}]", f"{c.tau_p_value:.2g}",
        f"{_fmt(c.rho)} [{_fmt(c.rho_ci[0], 2)}, {_fmt(c.rho_ci[1], 2)}]",
        *[_fmt(c.regret[k], 2, sign=False) for k in REGRET_KS], _fmt(c.partial_tau_params), by_act,
        str(c.n_degenerate),
    ]


def markdown_table(study: ProxyStudy) -> str:
    """One row per proxy and ensemble, sorted by tau (most negative first: the best ranking)."""
    return calibration_table(study.calibration)


def calibration_table(calibration: Sequence[ProxyCalibration]) -> str:
    """The calibration rows as a markdown table, most negative tau (the best ranking) first."""
    header = ["proxy", "Kendall tau [95% CI]", "p", "Spearman rho [95% CI]",
              *[f"top-{k} regret" for k in REGRET_KS], "partial tau (params)", "tau within activation",
              "degenerate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in sorted(calibration, key=lambda c: c.tau if math.isfinite(c.tau) else math.inf):
        lines.append("| " + " | ".join(_row(c)) + " |")
    return "\n".join(lines)


def plot_study(study: ProxyStudy, path: str | Path) -> Path:
    """Top: tau and its bootstrap 95 % CI per proxy; bottom: error against score for the three
    single proxies with the most negative tau."""
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(12, 8.5), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=(1.1, 1))
    axis = top.subplots()
    ordered = sorted(study.calibration, key=lambda c: c.tau if math.isfinite(c.tau) else math.inf)
    taus = np.array([c.tau for c in ordered])
    low = taus - np.array([c.tau_ci[0] for c in ordered])
    high = np.array([c.tau_ci[1] for c in ordered]) - taus
    axis.errorbar(range(len(ordered)), taus, yerr=[low, high], fmt="o", capsize=3)
    axis.axhline(0.0, color="grey", lw=0.8)
    axis.set_xticks(range(len(ordered)), [c.name for c in ordered], rotation=35, ha="right", fontsize=8)
    axis.set_ylabel("Kendall tau (score, validation error)")
    axis.set_title(f"Proxy rank agreement on {len(study.rows)} architectures (negative: higher score, lower "
                   "error); bars: bootstrap 95 % CI")
    axis.grid(alpha=0.3)
    singles = [c for c in study.best(len(study.calibration)) if not c.name.startswith("ensemble(")]
    best = singles[:3] or study.best(3)
    rows = [r for r in study.rows if math.isfinite(r.val_error_mev_per_atom)]
    errors = np.array([r.val_error_mev_per_atom for r in rows])
    for ax, c in zip(np.atleast_1d(bottom.subplots(1, max(1, len(best)))), best):
        scores = np.array([r.scores[c.name] for r in rows])
        ok = scores > -1e29
        for activation in sorted({r.activation for r in rows}):
            pick = ok & np.array([r.activation == activation for r in rows])
            ax.scatter(scores[pick], errors[pick], s=18, alpha=0.8, label=activation)
        ax.set_xlabel(f"{c.name} score")
        ax.set_ylabel("validation band-energy error (meV/atom)")
        if np.all(errors > 0):
            ax.set_yscale("log")
        ax.set_title(f"{c.name}: tau = {c.tau:+.3f}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.savefig(path, dpi=130)
    return path


def write_study(study: ProxyStudy, out_dir: str | Path) -> dict[str, Path]:
    """Write ``proxy_study.json``, ``architectures.csv``, ``proxy_table.md`` and ``proxy_study.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "proxy_study.json", "csv": out / "architectures.csv", "table": out / "proxy_table.md"}
    files["json"].write_text(json.dumps(study.to_dict(), indent=2, default=_jsonable))
    names = study.config.proxy_names()
    with open(files["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "widths", "activation", "n_params", "val_error_mev_per_atom", "train_status",
                         "epochs", "best_epoch", "train_seconds", *names])
        for r in study.rows:
            writer.writerow([r.label, "x".join(map(str, r.widths)), r.activation, r.n_params,
                             repr(r.val_error_mev_per_atom), r.train_status, r.epochs, r.best_epoch, r.train_seconds,
                             *[repr(r.scores[n]) for n in names]])
    files["table"].write_text(markdown_table(study) + "\n")
    files["figure"] = plot_study(study, out / "proxy_study.png")
    log.info("wrote %s", ", ".join(str(p) for p in files.values()))
    return files


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
