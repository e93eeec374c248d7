"""Direct search: converges to the known optimum of a separable function, one hyperparameter at
a time in parallel batches, never retrains a config, repeats, budget, failures, save/restore."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, SearcherDriver, canonical


class TestDirectConformance(SearcherConformance):
    strategy_name = "direct"
    space = {
        "n_layers": [1, 2],
        "width": {"type": "int", "low": 8, "high": 24, "step": 8},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "levels": [1e-4, 1e-2]},
    }
    fixed = {"activation": "ReLU"}
    max_concurrent = 2


SPACE = {
    "n_layers": [1, 2, 3, 4],
    "width": [8, 16, 32, 64, 128],
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True,
                      "levels": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]},
    "activation": ["ReLU", "Tanh"],
}
OPTIMUM = {"n_layers": 3, "width": 32, "learning_rate": 1e-3, "activation": "Tanh"}


def quadratic(config: dict[str, Any]) -> float:
    """Separable, minimum 1.0 at OPTIMUM."""
    return (
        1.0
        + (config["n_layers"] - 3) ** 2
        + 0.5 * (math.log2(config["width"]) - 5) ** 2
        + 2.0 * (math.log10(config["learning_rate"]) + 3) ** 2
        + (0.0 if config["activation"] == "Tanh" else 0.3)
    )


def reports(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{METRIC: quadratic(config), "status": "completed"}]


def make(space: dict[str, Any] | None = None, *, fixed: dict[str, Any] | None = None,
         max_trials: int | None = None, **options: Any):
    cls = load_strategy("direct")
    strategy = cls(SearchSpace.model_validate(space or SPACE), cls.Options(**options),
                   StrategyContext(seed=0, fixed=fixed or {}, max_trials=max_trials))
    strategy.validate()
    return strategy.make_searcher()


def hyper(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def test_converges_to_the_optimum_of_a_separable_function() -> None:
    searcher = make()
    log = SearcherDriver(searcher, max_concurrent=8, reports=reports).run()
    assert log.finished
    assert searcher.best_config == OPTIMUM
    assert searcher.best_value == pytest.approx(1.0)
    texts = [canonical(hyper(c)) for c in log.configs]
    assert len(texts) == len(set(texts)), "a config was trained twice"
    # pass 1 trains 4 + 4 + 4 + 1 new configs (the current point is reused); pass 2 trains the
    # 3 + 4 + 4 + 0 new ones (ReLU at the optimum was met in pass 1) and changes nothing: a
    # separable function is solved in one pass
    phases = [c["_phase"] for c in log.configs]
    assert [phases.count(f"pass1:{n}") for n in SPACE] == [4, 4, 4, 1]
    assert [phases.count(f"pass2:{n}") for n in SPACE] == [3, 4, 4, 0]
    assert len(log.configs) == 24


def test_one_hyperparameter_per_batch_then_none_while_waiting() -> None:
    searcher = make()
    batch = [searcher.suggest(f"t{i}") for i in range(4)]
    assert all(isinstance(c, dict) for c in batch)
    assert searcher.suggest("extra") is None  # at most the number of levels run in parallel
    assert [c["n_layers"] for c in batch] == [1, 2, 3, 4]
    for config in batch:  # the others held at the start (first levels)
        assert (config["width"], config["learning_rate"], config["activation"]) == (8, 1e-5, "ReLU")
    for i, config in enumerate(batch):
        searcher.on_trial_complete(f"t{i}", {METRIC: quadratic(config), "status": "completed"})
    nxt = searcher.suggest("t4")
    assert nxt["_phase"] == "pass1:width" and nxt["n_layers"] == 3


def test_starts_at_the_fixed_values() -> None:
    searcher = make(fixed={"width": 64, "learning_rate": 0.5, "activation": "Tanh"})
    config = searcher.suggest("a")
    assert (config["width"], config["learning_rate"], config["activation"]) == (64, 1e-5, "Tanh")


def test_max_passes_one_stops_after_one_pass() -> None:
    searcher = make(max_passes=1)
    log = SearcherDriver(searcher, max_concurrent=8, reports=reports).run()
    assert {c["_phase"].split(":")[0] for c in log.configs} == {"pass1"}
    assert searcher.best_config == OPTIMUM


def test_repeats_average_over_seeds() -> None:
    def noisy(config: dict[str, Any]) -> list[dict[str, Any]]:
        # seed 0 flatters n_layers=1 a lot, seed 1 penalises it as much: only the mean is right
        bias = (-5.0 if config["_seed"] == 0 else 5.0) if config["n_layers"] == 1 else 0.0
        return [{METRIC: quadratic(config) + bias, "status": "completed"}]

    searcher = make(repeats=2)
    log = SearcherDriver(searcher, max_concurrent=8, reports=noisy).run()
    assert searcher.best_config == OPTIMUM
    seeds: dict[str, list[int]] = {}
    for config in log.configs:
        seeds.setdefault(canonical(hyper(config)), []).append(config["_seed"])
    assert all(sorted(s) == [0, 1] for s in seeds.values())


def test_failed_trials_are_never_the_best() -> None:
    def flaky(config: dict[str, Any]) -> list[dict[str, Any]]:
        if config["n_layers"] == 3:
            return [{"status": "failed", "reason": "out of memory"}]
        if config["width"] == 32:
            return [{"status": "completed"}]  # no metric: failed too
        return reports(config)

    searcher = make()
    SearcherDriver(searcher, max_concurrent=8, reports=flaky).run()
    assert searcher.best_config["n_layers"] in (2, 4)
    assert searcher.best_config["width"] in (16, 64)


def test_errored_trial_counts_as_failed() -> None:
    searcher = make({"n_layers": [1, 2]})
    a, b = searcher.suggest("a"), searcher.suggest("b")
    searcher.on_trial_complete("a", {METRIC: 0.1}, error=True)
    searcher.on_trial_complete("b", {METRIC: 2.0, "status": "completed"})
    searcher.on_trial_complete("unknown", {METRIC: 0.0})  # ignored
    assert searcher.suggest("c") == "FINISHED"
    assert searcher.best_config == {"n_layers": b["n_layers"]} and a["n_layers"] != b["n_layers"]


def test_budget_ends_the_search() -> None:
    searcher = make(max_trials=6)
    log = SearcherDriver(searcher, max_concurrent=8, reports=reports).run()
    assert log.finished and len(log.configs) == 6


def test_restore_mid_batch_goes_on_without_repeats(tmp_path) -> None:
    full = SearcherDriver(make(), max_concurrent=3, reports=reports).run()
    first = SearcherDriver(make(), max_concurrent=3, reports=reports)
    first.run(stop_after=10)
    assert first.pending, "the test wants trials running at save time"
    first.searcher.save(str(tmp_path / "direct.pkl"))
    restored = make()
    restored.restore(str(tmp_path / "direct.pkl"))
    log = first.handover(restored).run()
    assert [canonical(c) for c in log.configs] == [canonical(c) for c in full.configs]
    assert restored.best_config == OPTIMUM


def test_restore_into_another_space_is_refused(tmp_path) -> None:
    searcher = make()
    searcher.suggest("a")
    searcher.save(str(tmp_path / "s.pkl"))
    other = make({"n_layers": [1, 2]})
    with pytest.raises(ConfigError, match="changed since the study was saved"):
        other.restore(str(tmp_path / "s.pkl"))


def test_levels_are_required() -> None:
    cls = load_strategy("direct")
    space = SearchSpace.model_validate({"n_layers": [1, 2], "dropout": {"type": "float", "low": 0.0, "high": 0.5}})
    with pytest.raises(ConfigError, match="dropout.*levels"):
        cls(space, cls.Options(), StrategyContext()).validate()
    huge = SearchSpace.model_validate({"max_epochs": {"type": "int", "low": 1, "high": 1000}})
    with pytest.raises(ConfigError, match="max_epochs.*1000 levels"):
        cls(huge, cls.Options(), StrategyContext()).validate()
    with pytest.raises(Exception, match="max_passes"):
        cls.Options(max_passes=0)


# -- end to end: the real runner, trainable and data on a local Ray -----------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_end_to_end_on_the_small_dataset(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    from hpsearch.api import Experiment

    experiment = Experiment.from_dict({
        "name": "direct-e2e",
        "dataset": {"store": str(small_store)},
        "search_space": {"n_layers": [1, 2]},
        "strategy": {"name": "direct"},
        "fixed": {"width": 16, "max_epochs": 5, "patience": 3, "batch_size": 64, "learning_rate": 1e-2},
        "budget": {"max_concurrent": 2},
        "storage_path": str(tmp_path / "study"),
    })
    result = experiment.run()
    trials = result.trials
    # one step (both levels at once), then pass 2 finds nothing new to train
    assert list(trials["phase"]) == ["pass1:n_layers", "pass1:n_layers"]
    assert sorted(trials["n_layers"]) == [1, 2]
    done = trials[trials["status"] == "completed"]
    assert len(done) >= 1, trials[["status", "reason"]]
    best = done.loc[done["val_ldos_mse"].idxmin()]  # the default objective (ldos_mse) selects
    assert result.best_config["n_layers"] == best["n_layers"]
