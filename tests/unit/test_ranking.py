"""Kendall tau-b against hand counts and a brute-force pair count; the figure-5 study and its CLI."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hpsearch.errors import DataError
from hpsearch.scoring import WORST_SCORE, NaswotResult, kendall_tau, kendall_test, mean_score
from hpsearch.scoring.study import naswot_error_study, read_trials_csv


def brute_force_tau_b(x: list[float], y: list[float]) -> float:
    """Count every pair: concordant, discordant, tied in x only / y only (independent of scipy)."""
    concordant = discordant = tied_x = tied_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tied_x += 1
        elif dy == 0:
            tied_y += 1
        elif dx * dy > 0:
            concordant += 1
        else:
            discordant += 1
    return (concordant - discordant) / math.sqrt((concordant + discordant + tied_x) * (concordant + discordant + tied_y))


def test_hand_counted_examples() -> None:
    # pairs of [1..5] vs [3,1,2,5,4]: 7 concordant, 3 discordant -> (7 - 3) / 10
    assert kendall_tau([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]) == pytest.approx(0.4, abs=1e-15)
    # one pair tied in x, one tied in y, 4 concordant: 4 / sqrt(5 * 5)
    assert kendall_tau([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8, abs=1e-15)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau(np.array([0.1, 0.2, 0.3]), np.array([1.0, 5.0, 9.0])) == pytest.approx(1.0)


def test_against_brute_force_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 6, size=25).astype(float).tolist()
        y = (np.array(x) * rng.choice([-1, 1]) + rng.integers(0, 4, size=25)).tolist()
        assert kendall_tau(x, y) == pytest.approx(brute_force_tau_b(x, y), abs=1e-12)


def test_p_value_and_size() -> None:
    result = kendall_test(list(range(12)), list(range(12)))
    assert result.tau == pytest.approx(1.0) and result.n == 12 and 0 < result.p_value < 1e-6
    noise = np.random.default_rng(1).normal(size=(2, 40))
    assert kendall_test(noise[0], noise[1]).p_value > 0.01


def test_invalid_input() -> None:
    with pytest.raises(DataError, match="same length"):
        kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(DataError, match="at least 2"):
        kendall_tau([1], [2])
    with pytest.raises(DataError, match="non-finite"):
        kendall_tau([1, 2, float("nan")], [1, 2, 3])
    with pytest.raises(DataError, match="all 3 values of y are equal"):
        kendall_tau([1, 2, 3], [5, 5, 5])


# ---------------------------------------------------------------- the figure-5 study

def result(scores: list[float], reason: str | None = None) -> NaswotResult:
    return NaswotResult(WORST_SCORE if reason else mean_score(scores), tuple(scores), reason)


def test_study_taus_for_both_conventions(tmp_path: Path) -> None:
    per_init = [[10.0, 12.0], [20.0, 21.0], [30.0, 36.0], [40.0, 40.5], [50.0, 58.0]]
    errors = [5.0, 4.0, 3.0, 2.0, 1.0]  # the paper score ranks perfectly (tau = -1)
    trials = [(result(s), e) for s, e in zip(per_init, errors)]
    trials += [(result([1.0, 2.0], reason="dead"), 0.5), (result([60.0, 61.0]), float("nan"))]
    study = naswot_error_study(trials, tmp_path / "fig5.png", labels=list("abcdefg"))
    assert (study.n, study.n_excluded) == (5, 2)
    assert study.tau_paper == pytest.approx(-1.0)
    v1 = [np.mean(-np.array(s)) + np.std(-np.array(s)) for s in per_init]  # eq. 14 of -S per trial
    assert [p.score_v1 for p in study.points] == pytest.approx(v1)
    assert study.tau_v1 == pytest.approx(brute_force_tau_b(v1, errors))
    assert study.figure_path is not None and study.figure_path.stat().st_size > 10_000
    assert (tmp_path / "fig5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(json.dumps(study.to_dict(), default=str))["n"] == 5


def test_study_with_plain_scores_and_too_few() -> None:
    study = naswot_error_study([(3.0, 1.0), (2.0, 2.0), (1.0, 2.5)])
    assert study.tau_paper == pytest.approx(-1.0) and study.tau_v1 == pytest.approx(1.0)
    assert study.figure_path is None
    with pytest.raises(DataError, match="at least 2"):
        naswot_error_study([(1.0, 1.0), (result([1.0], reason="dead"), 2.0)])


def test_trials_csv_round_trip_and_cli(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "error_mev_per_atom", "init_scores_paper", "naswot_reason"])
        writer.writerow(["a", "3.0", "1.0;2.0", ""])
        writer.writerow(["b", "2.0", "4.0;4.5", ""])
        writer.writerow(["c", "1.0", "8.0;5.0", ""])
        writer.writerow(["d", "0.1", "1.0;1.0", "dead network"])
    trials, labels = read_trials_csv(path)
    assert labels == ["a", "b", "c", "d"] and not trials[3][0].ok  # type: ignore[union-attr]
    from hpsearch.cli import app

    out = tmp_path / "study"
    run = CliRunner().invoke(app, ["naswot-study", "--trials", str(path), "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "n=3" in run.output and (out / "naswot_error.png").exists()
    summary = json.loads((out / "naswot_study.json").read_text())
    assert summary["tau_paper"] == pytest.approx(-1.0) and summary["n_excluded"] == 1
