"""OAT: orthogonal arrays (strength 2 checked independently), range analysis against a known
optimum, the row/optimum protocol, save/restore and config errors."""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, SearcherDriver
from hpsearch_searchers._oa import _oapackage_search, is_strength2, min_run_size, orthogonal_array, run_size_step
from hpsearch_searchers.oat import range_analysis


class TestOATConformance(SearcherConformance):
    strategy_name = "oat"
    space = {"n_layers": [1, 2], "width": [8, 16], "activation": ["ReLU", "Tanh"]}
    fixed = {"learning_rate": 1e-3}
    expected_trials = 5  # the 4 rows of L4(2^3) + the optimum
    max_concurrent = 2


def _pairs_balanced(rows: tuple[tuple[int, ...], ...], levels: tuple[int, ...]) -> bool:
    """Independent strength-2 check: every pair of columns holds every level pair equally often."""
    n = len(rows)
    for i, j in itertools.combinations(range(len(levels)), 2):
        counts = Counter((row[i], row[j]) for row in rows)
        expected = n / (levels[i] * levels[j])
        if set(counts) != set(itertools.product(range(levels[i]), range(levels[j]))):
            return False
        if any(c != expected for c in counts.values()):
            return False
    return True


@pytest.mark.parametrize(
    ("levels", "runs"),
    [
        ((4, 4, 3, 3, 2, 2), 144),  # 4x4 and 3x3 pairs: 144 is the smallest possible
        ((3, 3, 3, 3), 9),
        ((2,) * 7, 8),
        ((4,) * 5, 16),
        ((3, 3, 3, 2, 2, 2), 36),
        ((5, 4, 3, 2), 120),
        ((8, 4, 4, 2, 2, 2), 32),
        ((2, 3, 2), 12),
        ((3, 2, 2, 2, 2), 12),  # oapackage finds it; the linear construction needs 24
        ((2,) * 11, 12),  # Plackett-Burman size, from oapackage
    ],
)
def test_arrays_are_orthogonal_and_as_small_as_expected(levels: tuple[int, ...], runs: int) -> None:
    array = orthogonal_array(levels)
    assert array.n_rows == runs
    assert array.n_rows >= min_run_size(levels)
    assert _pairs_balanced(array.rows, levels)
    for j, s in enumerate(levels):
        assert Counter(row[j] for row in array.rows) == {v: runs // s for v in range(s)}


def test_array_is_enlarged_when_no_minimal_one_is_found() -> None:
    levels = (6, 2, 2, 2, 2)  # bound 12 rows; the 12-run array 6 x 2^2 admits no more 2-level columns
    array = orthogonal_array(levels)
    assert array.n_rows > min_run_size(levels)
    assert array.n_rows % run_size_step(levels) == 0
    assert _pairs_balanced(array.rows, levels)


def test_single_level_and_single_factor_arrays() -> None:
    assert orthogonal_array((4,)).rows == ((0,), (1,), (2,), (3,))
    array = orthogonal_array((1, 3, 2))
    assert {row[0] for row in array.rows} == {0}
    assert _pairs_balanced(array.rows, (1, 3, 2))


def test_strength_check_rejects_a_non_orthogonal_array() -> None:
    good = orthogonal_array((2, 2, 2)).rows
    assert is_strength2(good, (2, 2, 2))
    bad = list(good)
    bad[0] = (1 - bad[0][0],) + bad[0][1:]
    assert not is_strength2(bad, (2, 2, 2))
    full_factorial_minus_one = list(itertools.product(range(3), range(2)))[:-1]
    assert not is_strength2(full_factorial_minus_one, (3, 2))


def test_array_search_is_fast_for_six_factors() -> None:
    orthogonal_array.cache_clear()
    start = time.monotonic()
    for levels in [(4, 4, 3, 3, 2, 2), (8, 4, 4, 2, 2, 2), (5, 4, 3, 3, 2, 2), (3, 3, 3, 2, 2, 2)]:
        assert _pairs_balanced(orthogonal_array(levels).rows, levels)
    assert time.monotonic() - start < 12.0


def test_a_hanging_or_crashing_oapackage_search_cannot_take_the_study_down() -> None:
    start = time.monotonic()
    assert _oapackage_search((6, 6, 6), [36], 0.5) is None  # oapackage ignores its time limit here
    assert time.monotonic() - start < 10.0
    found = _oapackage_search((3, 2, 2, 2, 2), [12], 2.0)
    assert found is not None and _pairs_balanced(tuple(map(tuple, found)), (3, 2, 2, 2, 2))


def test_range_analysis_by_hand() -> None:
    rows = [(0, 0), (0, 1), (1, 0), (1, 1)]
    values = [1.0, 3.0, 5.0, None]  # the last row failed
    result = range_analysis(rows, [2, 2], values, "min")
    assert result["level_means"] == [[2.0, 5.0], [3.0, 3.0]]
    assert result["best_level"] == [0, 0]
    assert result["ranges"] == [3.0, 0.0]
    assert result["importance"] == [0, 1]
    assert range_analysis(rows, [2, 2], values, "max")["best_level"][0] == 1


# -- the searcher driven with a synthetic objective --------------------------------------------
LEVELS = {
    "n_layers": [1, 2, 3, 4],
    "width": [16, 32, 64, 128],
    "activation": ["ReLU", "Tanh", "Sigmoid"],
    "learning_rate": [1e-4, 1e-3, 1e-2],
    "batch_size": [32, 64],
    "optimizer": ["adam", "sgd"],
}
# per-factor contribution of each level (additive): the optimum is the argmin of each row
EFFECTS = {
    "n_layers": [0.8, 0.1, 0.4, 0.9],
    "width": [0.5, 0.3, 0.0, 0.2],
    "activation": [0.05, 0.0, 0.1],
    "learning_rate": [3.0, 0.0, 1.5],
    "batch_size": [0.0, 0.3],
    "optimizer": [0.0, 0.7],
}
OPTIMUM = {
    "n_layers": 2, "width": 64, "activation": "Tanh", "learning_rate": 1e-3, "batch_size": 32, "optimizer": "adam",
}


def objective(config: dict[str, Any]) -> float:
    return 1.0 + sum(EFFECTS[name][LEVELS[name].index(config[name])] for name in LEVELS)


def reports(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{METRIC: objective(config), "status": "completed"}]


def make(space: dict[str, Any] | None = None, max_trials: int | None = None, **options: Any):
    cls = load_strategy("oat")
    return cls(SearchSpace.model_validate(space or LEVELS), cls.Options(**options),
               StrategyContext(seed=0, max_trials=max_trials))


def test_range_analysis_finds_the_known_optimum() -> None:
    strategy = make()
    strategy.validate()
    searcher = strategy.make_searcher()
    log = SearcherDriver(searcher, max_concurrent=500, reports=reports).run()
    assert log.finished
    rows = [c for c in log.configs if c["_phase"] == "oa"]
    assert len(rows) == 144 and len(log.configs) == 145
    final = log.configs[-1]
    assert final["_phase"] == "optimum"
    assert {k: v for k, v in final.items() if not k.startswith("_")} == OPTIMUM
    analysis = searcher.analysis
    # additive objective on a strength-2 array: level means = effect + a constant, exactly
    for name, effects in EFFECTS.items():
        means = analysis["level_means"][name]
        offsets = [m - e for m, e in zip(means, effects)]
        assert max(offsets) - min(offsets) == pytest.approx(0.0, abs=1e-12)
        assert analysis["ranges"][name] == pytest.approx(max(effects) - min(effects))
    assert analysis["importance"][:2] == ["learning_rate", "n_layers"]
    assert analysis["importance"][-1] == "activation"
    assert searcher.best_config == OPTIMUM
    assert searcher.best_value == pytest.approx(objective(OPTIMUM))


def test_all_rows_are_suggested_before_waiting() -> None:
    space = {"n_layers": [1, 2, 3], "width": [8, 16, 32], "activation": ["ReLU", "Tanh", "Sigmoid"]}
    searcher = make(space).make_searcher()
    configs = [searcher.suggest(f"t{i}") for i in range(9)]
    assert all(isinstance(c, dict) for c in configs)
    assert searcher.suggest("wait") is None  # rows still running
    for i, config in enumerate(configs[:-1]):
        searcher.on_trial_complete(f"t{i}", {METRIC: float(i), "status": "completed"})
    assert searcher.suggest("wait2") is None
    searcher.on_trial_complete("t8", None, error=True)  # a failed row is left out, not fatal
    optimum = searcher.suggest("opt")
    assert optimum["_phase"] == "optimum"
    assert searcher.suggest("after") is None
    searcher.on_trial_complete("opt", {METRIC: 0.5, "status": "completed"})
    assert searcher.suggest("end") == "FINISHED"


def test_failed_rows_never_make_the_optimum() -> None:
    def flaky(config: dict[str, Any]) -> list[dict[str, Any]]:
        if config["learning_rate"] == 1e-3:  # the best level, but every trial with it fails
            return [{"status": "failed", "reason": "diverged"}]
        return reports(config)

    searcher = make().make_searcher()
    log = SearcherDriver(searcher, max_concurrent=500, reports=flaky).run()
    final = log.configs[-1]
    assert final["_phase"] == "optimum" and final["learning_rate"] == 1e-2
    assert searcher.analysis["level_means"]["learning_rate"][1] is None


def test_unknown_trial_is_ignored() -> None:
    searcher = make({"n_layers": [1, 2], "width": [8, 16]}).make_searcher()
    searcher.suggest("a")
    searcher.on_trial_complete("never-suggested", {METRIC: 1.0})
    assert searcher.suggest("b") is not None


def test_restore_mid_rows_finishes_without_repeats(tmp_path) -> None:
    full = SearcherDriver(make().make_searcher(), max_concurrent=4, reports=reports).run()
    first = SearcherDriver(make().make_searcher(), max_concurrent=4, reports=reports)
    first.run(stop_after=70)
    first.searcher.save(str(tmp_path / "oat.pkl"))
    restored = make().make_searcher()
    restored.restore(str(tmp_path / "oat.pkl"))
    log = first.handover(restored).run()
    assert [str(c) for c in log.configs] == [str(c) for c in full.configs]
    assert restored.best_config == OPTIMUM


def test_continuous_range_without_levels_is_refused_at_validate() -> None:
    strategy = make({"width": [8, 16], "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}})
    with pytest.raises(ConfigError, match="learning_rate.*levels"):
        strategy.validate()


def test_budget_smaller_than_the_array_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs 10 trials.*max_trials is 5"):
        make({"n_layers": [1, 2, 3], "width": [8, 16, 32]}, max_trials=5).validate()


def test_range_analysis_with_every_row_failed_trains_nothing() -> None:
    searcher = make({"n_layers": [1, 2], "width": [8, 16]}).make_searcher()
    log = SearcherDriver(searcher, max_concurrent=10, reports=lambda c: [{"status": "failed"}]).run()
    assert log.finished and all(c["_phase"] == "oa" for c in log.configs)
    assert searcher.best_config is None
    assert all(math.isnan(r) for r in searcher.analysis["ranges"].values())


# -- end to end: the real runner, trainable and data on a local Ray -----------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_end_to_end_on_the_small_dataset(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    from hpsearch.api import Experiment

    experiment = Experiment.from_dict({
        "name": "oat-e2e",
        "dataset": {"store": str(small_store)},
        "search_space": {"n_layers": [1, 2], "activation": ["ReLU", "Tanh"]},
        "strategy": {"name": "oat"},
        "fixed": {"width": 16, "max_epochs": 5, "patience": 3, "batch_size": 64, "learning_rate": 1e-2},
        "budget": {"max_concurrent": 2},
        "storage_path": str(tmp_path / "study"),
    })
    result = experiment.run()
    trials = result.trials
    assert list(trials["phase"]) == ["oa"] * 4 + ["optimum"]
    rows = trials[trials["phase"] == "oa"]
    assert sorted(zip(rows["n_layers"], rows["activation"])) == [(1, "ReLU"), (1, "Tanh"), (2, "ReLU"), (2, "Tanh")]
    done = rows[rows["status"] == "completed"]
    assert len(done) == 4, trials[["status", "reason"]]
    optimum = trials.iloc[-1]
    for name in ("n_layers", "activation"):  # range analysis by hand from the real errors
        means = done.groupby(name)["val_ldos_mse"].mean()  # the objective (default: the LDOS loss)
        assert optimum[name] == means.idxmin()
