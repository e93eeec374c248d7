"""Rank statistics of the proxy study against plain-loop computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hpsearch.errors import ConfigError, DataError
from hpsearch.scoring.calibration import (
    bootstrap_ci,
    calibrate,
    partial_tau,
    rank_average,
    regret_k,
    top_k_regret,
)


def _tau_loop(x, y) -> float:
    """Kendall tau-a by counting pairs (no ties in the data used)."""
    s = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in itertools.combinations(range(len(x)), 2))
    return s / (len(x) * (len(x) - 1) / 2)


def test_top_k_regret_by_hand():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    errors = np.array([4.0, 3.0, 2.0, 8.0, 1.0])
    assert top_k_regret(scores, errors, 1) == 4.0
    assert top_k_regret(scores, errors, 3) == 2.0
    assert top_k_regret(scores, errors, 5) == 1.0
    assert regret_k("10%", 48) == 5 and regret_k("10%", 5) == 1 and regret_k("5", 3) == 3


def test_partial_tau_matches_formula_on_loop_taus():
    rng = np.random.default_rng(1)
    z = rng.normal(size=30)
    x = z + 0.3 * rng.normal(size=30)
    y = z + 0.3 * rng.normal(size=30)
    txy, txz, tyz = _tau_loop(x, y), _tau_loop(x, z), _tau_loop(y, z)
    expected = (txy - txz * tyz) / math.sqrt((1 - txz**2) * (1 - tyz**2))
    assert partial_tau(x, y, z) == pytest.approx(expected, rel=1e-12)
    assert txy > 0.5 and abs(partial_tau(x, y, z)) < txy / 2  # z, the common cause, explains most of it


def test_rank_average_with_ties():
    scores = {"a": [1.0, 2.0, 3.0, 3.0], "b": [4.0, 3.0, 2.0, 1.0]}
    assert rank_average(scores, ["a", "b"]).tolist() == [2.5, 2.5, 2.75, 2.25]
    with pytest.raises(ConfigError, match="at least 2"):
        rank_average(scores, ["a"])
    with pytest.raises(ConfigError, match="not scored"):
        rank_average(scores, ["a", "c"])


def test_bootstrap_ci_covers_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(2)
    x = rng.normal(size=40)
    y = -x + 0.8 * rng.normal(size=40)
    low, high = bootstrap_ci(x, y, "tau", 300, seed=3)
    assert low < _tau_loop(x, y) < high < 0
    assert (low, high) == bootstrap_ci(x, y, "tau", 300, seed=3)
    assert bootstrap_ci(x, x, "rho", 50) == pytest.approx((1.0, 1.0), abs=1e-12)


def test_calibrate_groups_and_errors():
    rng = np.random.default_rng(4)
    scores = rng.normal(size=24)
    errors = np.exp(-scores + 0.3 * rng.normal(size=24))
    acts = ["ReLU", "Tanh"] * 12
    row = calibrate("p", scores, errors, acts, rng.integers(100, 1000, 24), n_bootstrap=100)
    assert row.tau == pytest.approx(_tau_loop(scores, errors), rel=1e-12)
    relu = np.array(acts) == "ReLU"
    assert row.tau_by_activation["ReLU"] == pytest.approx(_tau_loop(scores[relu], errors[relu]), rel=1e-12)
    assert row.ci_excludes_zero and row.regret["1"] >= 1.0
    with pytest.raises(DataError, match="not finite"):
        calibrate("p", scores, np.where(relu, np.nan, errors), acts, np.ones(24))


def test_select_proxy_and_choice_scores():
    from hpsearch.scoring.auto import choice_scores, members_of, select_proxy

    rng = np.random.default_rng(5)
    errors = rng.uniform(1, 10, size=12)
    acts, params = ["ReLU"] * 12, np.arange(12)
    rows = [calibrate("good", -errors, errors, acts, params, n_bootstrap=20),
            calibrate("ensemble(good+noise)", -errors, errors, acts, params, n_bootstrap=20),
            calibrate("noise", rng.normal(size=12), errors, acts, params, n_bootstrap=20)]
    assert select_proxy(rows).name == "good"  # tie with the ensemble: the single proxy wins
    assert members_of("ensemble(a+b)") == ("a", "b") and members_of("zico") == ("zico",)
    scores = {"a": [3.0, 1.0, 2.0], "b": [1.0, 2.0, 3.0]}
    assert choice_scores("a", scores).tolist() == [3.0, 1.0, 2.0]
    assert choice_scores("ensemble(a+b)", scores).tolist() == [2.0, 1.5, 2.5]
    with pytest.raises(ConfigError, match="needs scores of"):
        choice_scores("ensemble(a+c)", scores)


def test_top_ranks_by_hand_with_and_without_ties():
    from hpsearch.scoring.calibration import top_ranks

    errors = np.array([0.5, 0.1, 0.3, 0.2, 0.9, 0.4])  # ranks 5, 1, 3, 2, 6, 4
    distinct = top_ranks(np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0]), errors, k=5)
    assert (distinct.top1_rank, distinct.top5_rank, distinct.n_top1_tied) == (5.0, 1.0, 1)
    assert distinct.top1_regret == pytest.approx(0.5 / 0.1)
    backwards = top_ranks(-errors, errors, k=2)  # a perfect proxy
    assert (backwards.top1_rank, backwards.top5_rank, backwards.top1_regret) == (1.0, 1.0, 1.0)
    # the top-1 tied between ranks 5 and 6: expected rank 5.5, expected error (0.5 + 0.9) / 2
    tied = top_ranks(np.array([2.0, 1.0, 1.0, 1.0, 2.0, 0.0]), errors, k=3)
    assert tied.top1_rank == 5.5 and tied.n_top1_tied == 2 and tied.top1_regret == pytest.approx(0.7 / 0.1)
    # top 3: both 2.0s (ranks 5, 6) and one of the three 1.0s (ranks 1, 3, 2) at random: E[best] = (1 + 3 + 2) / 3
    assert tied.top5_rank == pytest.approx(2.0)
    # two of three tied enter the top k: P(best = 1) = 2/3, P(best = 2) = 1/3 (from ranks 1, 2, 3)
    two = top_ranks(np.array([0.0, 1.0, 1.0, 1.0, 2.0, 0.0]), errors, k=3)
    assert two.top5_rank == pytest.approx(2 / 3 * 1 + 1 / 3 * 2)
    # brute force over every order of the ties agrees
    import itertools

    scores = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 0.0])
    ranks = np.array([5, 1, 3, 2, 6, 4])
    tied_rows = [0, 1, 3, 4]
    best = [min(ranks[[2, *order[:2]]]) for order in itertools.permutations(tied_rows)]
    assert top_ranks(scores, errors, k=3).top5_rank == pytest.approx(np.mean(best))


def test_calibrate_reports_the_second_error_and_the_top_ranks():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=20)
    errors = np.exp(-scores + 0.2 * rng.normal(size=20))
    second = errors + rng.normal(size=20)
    second[3] = np.nan  # e.g. a band energy without a Fermi level: left out of the second tau only
    row = calibrate("p", scores, errors, ["ReLU"] * 20, np.arange(20), n_bootstrap=50, second_errors=second)
    ok = np.isfinite(second)
    assert row.n_second == 19 and row.tau_second == pytest.approx(_tau_loop(scores[ok], second[ok]), rel=1e-12)
    assert row.tau_second_ci[0] <= row.tau_second <= row.tau_second_ci[1]
    top = int(np.argmax(scores))
    assert row.top1_rank == 1 + int(np.sum(errors < errors[top]))
    assert row.top1_regret == pytest.approx(errors[top] / errors.min()) and row.top5_rank <= row.top1_rank
