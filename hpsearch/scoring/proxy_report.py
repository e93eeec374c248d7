"""Files of a proxy study: the table (Markdown, with the study's training settings and size above
it), every architecture (CSV), everything (JSON), and the figure (Kendall tau with its 95 % CI per
proxy; score against validation LDOS RMSE for the best three).

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

from hpsearch.scoring.calibration import REGRET_KS, ProxyCalibration, beats
from hpsearch.scoring.proxy_study import ERROR, SECOND_ERROR, ProxyStudy

__all__ = ["calibration_table", "markdown_table", "plot_study", "write_study"]

log = logging.getLogger(__name__)


def _fmt(value: float, digits: int = 3, sign: bool = True) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _rank(value: float, n: int) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}/{n}" if value == round(value) else f"{value:.1f}/{n}"


def _row(c: ProxyCalibration, base_tau: float) -> list[str]:
    by_act = ", ".join(f"{a} {_fmt(t, 2)}" for a, t in sorted(c.tau_by_activation.items()))
    better = c.name == "params" or beats(c.tau, base_tau)
    tied = f" ({c.n_top1_tied} tied)" if c.n_top1_tied > 1 else ""
    return [
        c.name, f"{_fmt(c.tau)} [{_fmt(c.tau_ci[0], 2)}, {_fmt(c.tau_ci[1], 2)}]", f"{c.tau_p_value:.2g}",
        "baseline" if c.name == "params" else ("yes" if better else "**no**"),
        _rank(c.top1_rank, c.n) + tied, _rank(c.top5_rank, c.n), _fmt(c.top1_regret, 2, sign=False),
        f"{_fmt(c.tau_second)} [{_fmt(c.tau_second_ci[0], 2)}, {_fmt(c.tau_second_ci[1], 2)}]",
        f"{_fmt(c.rho)} [{_fmt(c.rho_ci[0], 2)}, {_fmt(c.rho_ci[1], 2)}]",
        *[_fmt(c.regret[k], 2, sign=False) for k in REGRET_KS if k != "1"], _fmt(c.partial_tau_params), by_act,
        str(c.n_degenerate),
    ]


def markdown_table(study: ProxyStudy) -> str:
    """The study's size and training settings, one row per proxy and ensemble sorted by tau (most
    negative first: the best ranking), and what the NASWOT names and the params mark mean."""
    parts = [study_header(study), calibration_table(study.calibration), legend(study)]
    if study.test_calibration:
        parts.append(test_check(study))
    return "\n\n".join(parts)


def test_check(study: ProxyStudy) -> str:
    """The same proxies judged on the held-out test part (``report_test``): tau against the test LDOS
    RMSE and against the test band-energy error, with their CIs, and the top-1 rank on test."""
    lines = [f"Held-out test check ({', '.join(study.held_out)}; read once after training, never by a "
             "choice): per proxy, Kendall tau against the test LDOS RMSE and the test band-energy error.", "",
             "| proxy | tau vs test LDOS RMSE [95% CI] | top-1 rank (test) | tau vs test band energy [95% CI] |",
             "|---|---|---|---|"]
    for c in sorted(study.test_calibration, key=lambda c: c.tau if math.isfinite(c.tau) else math.inf):
        lines.append(f"| {c.name} | {_fmt(c.tau)} [{_fmt(c.tau_ci[0], 2)}, {_fmt(c.tau_ci[1], 2)}] | "
                     f"{c.top1_rank:g}/{c.n} | {_fmt(c.tau_second)} [{_fmt(c.tau_second_ci[0], 2)}, "
                     f"{_fmt(c.tau_second_ci[1], 2)}] |")
    return "\n".join(lines)


def study_header(study: ProxyStudy) -> str:
    """What the table was measured on: architectures, split, training settings (short training hides
    differences between architectures, so they belong with every table)."""
    config = study.config
    space = (f"every depth x width x activation (depths {list(config.depths)} x widths {list(config.widths)} x "
             f"{list(config.activations)}, one width for all layers)" if config.architectures == "all"
             else f"sampled from depths {list(config.depths)}, widths {list(config.widths)} per layer, "
                  f"{list(config.activations)}")
    return (f"Proxy study on {study.store}: {len(study.rows)} architectures, {space}; trained on "
            f"{', '.join(study.split.get('train', []))}, validated on {', '.join(study.split.get('validation', []))}"
            f", held out{' (read once after training, for the test check below)' if study.test_calibration else ' and never loaded'}: "
            f"{', '.join(study.held_out) or 'none'}.\n"
            f"Training: at most {config.max_epochs} epochs, early-stopping patience {config.patience}, Adam "
            f"learning rate {config.learning_rate:g}"
            f"{' (x0.3 after 4 epochs without improvement)' if config.lr_schedule else ''}, mini-batch {config.train_batch_size}, seed {config.seed}; "
            f"{study.n_capped()} of {len(study.rows)} stopped at the epoch cap (maybe still improving). Scores: "
            f"{config.n_init} initialisations, {config.batch_size} training points.\n"
            f"Judged on the {ERROR} (Kendall tau, ranks, regret; negative tau: higher score, lower error); "
            f"second column: {SECOND_ERROR}.")


def legend(study: ProxyStudy) -> str:
    """The NASWOT signs side by side, and the meaning of the columns."""
    rows = {c.name: c for c in study.calibration}
    signs = "; ".join(f"{name} ({what}) tau {_fmt(rows[name].tau)}, top-1 rank "
                      f"{_rank(rows[name].top1_rank, rows[name].n)}"
                      for name, what in (("naswot", "= naswot-paper, S maximised as the paper's software does"),
                                         ("naswot-v1", "-S"), ("params", "size baseline")) if name in rows)
    return (f"NASWOT signs: {signs}.\n"
            "top-1 rank: the rank (1 = lowest error) of the proxy's favourite among all trained architectures; "
            "best in top 5: the best rank among its five favourites; top-1 regret: its error / the lowest "
            "(ties in a score: expectations over a random order). beats params **no**: the proxy ranks the "
            "networks no better than their parameter count does.")


def calibration_table(calibration: Sequence[ProxyCalibration]) -> str:
    """The calibration rows as a markdown table, most negative tau (the best ranking) first."""
    header = ["proxy", "Kendall tau [95% CI]", "p", "beats params", "top-1 rank", "best in top 5", "top-1 regret",
              "tau vs band energy [95% CI]", "Spearman rho [95% CI]",
              *[f"top-{k} regret" for k in REGRET_KS if k != "1"], "partial tau (params)", "tau within activation",
              "degenerate"]
    base = next((c.tau for c in calibration if c.name == "params"), math.nan)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in sorted(calibration, key=lambda c: c.tau if math.isfinite(c.tau) else math.inf):
        lines.append("| " + " | ".join(_row(c, base)) + " |")
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
    axis.set_ylabel(f"Kendall tau (score, {ERROR})")
    axis.set_title(f"Proxy rank agreement on {len(study.rows)} architectures (negative: higher score, lower "
                   "error); bars: bootstrap 95 % CI")
    axis.grid(alpha=0.3)
    singles = [c for c in study.best(len(study.calibration)) if not c.name.startswith("ensemble(")]
    best = singles[:3] or study.best(3)
    rows = [r for r in study.rows if math.isfinite(r.val_ldos_rmse)]
    errors = np.array([r.val_ldos_rmse for r in rows])
    for ax, c in zip(np.atleast_1d(bottom.subplots(1, max(1, len(best)))), best):
        scores = np.array([r.scores[c.name] for r in rows])
        ok = scores > -1e29
        for activation in sorted({r.activation for r in rows}):
            pick = ok & np.array([r.activation == activation for r in rows])
            ax.scatter(scores[pick], errors[pick], s=18, alpha=0.8, label=activation)
        ax.set_xlabel(f"{c.name} score")
        ax.set_ylabel(ERROR)
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
        writer.writerow(["label", "widths", "activation", "n_params", "val_ldos_rmse", "val_error_mev_per_atom",
                         "train_status", "epochs", "best_epoch", "train_seconds", *names])
        for r in study.rows:
            writer.writerow([r.label, "x".join(map(str, r.widths)), r.activation, r.n_params, repr(r.val_ldos_rmse),
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
