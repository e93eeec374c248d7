"""Figures 3 and 6 show what they claim; printed tables are not cut when piped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpsearch.cli.console import plain
from hpsearch.tracking.plots import (
    architectures_figure,
    error_vs_compute_figure,
    plot_architectures,
    plot_error_vs_compute,
)


def _study(name: str, errors: list[float], seconds: list[float], mean: float) -> dict:
    trials = pd.DataFrame({"core_seconds": seconds, "band_energy_error_mev_per_atom": errors})
    return {"strategy": name, "trials": trials, "retrain_mean": mean, "retrain_std": 2.0}


def test_figure3_draws_naswot_as_a_point_and_names_validation_error(tmp_path: Path) -> None:
    naswot = _study("naswot (fixed)", [np.nan, np.nan, 7.5], [0.5, 0.5, 4.0], 20.0)
    tpe = _study("tpe", [30.0, 12.0, np.nan, 9.0], [3.0, 3.0, 0.1, 3.0], 15.0)
    fig = error_vs_compute_figure([naswot, tpe])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "naswot (fixed): best validation error so far" in labels
    assert "tpe: winner retrained (mean ± std)" in labels
    point = [line for line in ax.get_lines() if line.get_label().startswith("naswot (fixed): best")]
    assert len(point) == 1 and point[0].get_marker() == "D"
    np.testing.assert_allclose(point[0].get_xydata(), [[5.0, 7.5]])  # all its compute, its one error
    curve = next(line for line in ax.get_lines() if line.get_label() == "tpe: best validation error so far")
    assert curve.get_ydata()[-1] == 9.0 and curve.get_xdata()[-1] == pytest.approx(9.1)
    assert "validation" in ax.get_title()
    assert plot_error_vs_compute([naswot, tpe], tmp_path / "f3.png").stat().st_size > 10_000


def test_figure6_bars_never_overlap_and_it_has_a_legend(tmp_path: Path) -> None:
    winners = [{"strategy": s, "n_in": 91, "widths": w, "activations": a, "n_out": 64}
               for s, w, a in [("naswot", [16], "ReLU"), ("tpe", [32, 16], ["Tanh", "ReLU"]), ("oat", [16, 16, 16], "Tanh")]]
    fig = architectures_figure(winners)
    ax = fig.axes[0]
    rows: dict[float, list[tuple[float, float]]] = {}
    for bar in ax.patches:
        rows.setdefault(round(bar.get_y(), 3), []).append((bar.get_x(), bar.get_x() + bar.get_width()))
    for spans in rows.values():
        spans.sort()
        assert all(left[1] < right[0] for left, right in zip(spans, spans[1:])), spans
    assert len(ax.get_legend().get_texts()) == 2
    assert {"91", "64", "32 Tanh", "16 ReLU"} <= {t.get_text() for t in ax.texts}
    assert plot_architectures(winners, tmp_path / "f6.png").stat().st_size > 5_000


def test_integral_floats_print_as_integers() -> None:
    assert plain({"n_layers": 1.0, "width": 16.0, "lr": 0.003, "acts": ["ReLU", 2.0]}) == \
        {"n_layers": 1, "width": 16, "lr": 0.003, "acts": ["ReLU", 2]}
    assert repr(plain({"n_layers": 1.0})) == "{'n_layers': 1}"


def _searchers(*args: str, columns: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    cli = Path(sys.executable).with_name("hpsearch")
    done = subprocess.run([str(cli), *args, "searchers"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_tables_are_full_width_when_piped() -> None:
    piped = _searchers()
    assert max(map(len, piped)) > 80 and not any("…" in line for line in piped)
    assert max(map(len, _searchers(columns="100"))) <= 100
    assert max(map(len, _searchers("--width", "120"))) <= 120


def test_each_warning_once() -> None:
    """The same warning (a strategy validated by the benchmark, then by its study) shows once."""
    import logging

    from hpsearch.cli.console import OnceFilter

    once = OnceFilter()
    records = [logging.LogRecord("hpsearch_searchers.naswot", level, "x.py", 1, "not searched: %s", ("lr",), None)
               for level in (logging.WARNING, logging.WARNING, logging.INFO, logging.INFO)]
    assert [once.filter(r) for r in records] == [True, False, True, True]
    other = logging.LogRecord("hpsearch_searchers.naswot", logging.WARNING, "x.py", 1, "not searched: %s", ("bs",), None)
    assert once.filter(other) is True
