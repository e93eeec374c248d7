"""NASWOT optimized: NASWOT picks the architecture, a seeded TPE study (ask/tell inside the
searcher) its optimisation settings, then the best is trained; concurrency, failures and an
exact resume of the Optuna study."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, NASWOT_METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, SearcherDriver, canonical

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestNaswotOptimizedConformance(SearcherConformance):
    strategy_name = "naswot-optimized"
    space = {
        "n_layers": [1, 2],
        "width": [8, 16],
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    }
    options = {"chunk_size": 2, "n_trials": 4, "n_startup_trials": 2}
    max_concurrent = 2
    expected_trials = 7  # 2 score trials + 4 TPE trainings + the best once more


SPACE = {
    "n_layers": [1, 2, 3],
    "width": [16, 32, 64],
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "batch_size": [16, 32, 64, 128],
}
BEST_ARCH = {"n_layers": 1, "width": 64}


def objective(config: dict[str, Any]) -> float:
    """Minimum 1.0 at learning_rate 1e-3, batch_size 32 (any architecture)."""
    return 1.0 + (math.log10(config["learning_rate"]) + 3) ** 2 + 0.1 * abs(math.log2(config["batch_size"]) - 5)


def reports(config: dict[str, Any]) -> list[dict[str, Any]]:
    if config["_kind"] == "score":
        scores = [float(c["width"]) - c["n_layers"] for c in config["_candidates"]]  # best: 1 x 64
        return [{"naswot_scores": scores, "naswot_reasons": [""] * len(scores), NASWOT_METRIC: max(scores)}]
    return [{METRIC: objective(config), "status": "completed"}]


def make(space: dict[str, Any] | None = None, *, max_concurrent: int = 1, max_trials: int | None = None,
         **options: Any):
    cls = load_strategy("naswot-optimized")
    strategy = cls(SearchSpace.model_validate(space or SPACE), cls.Options(**options),
                   StrategyContext(seed=3, max_concurrent=max_concurrent, max_trials=max_trials))
    strategy.validate()
    return strategy.make_searcher()


def hyper(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def test_tpe_tunes_the_optimisation_of_the_naswot_architecture() -> None:
    searcher = make(chunk_size=4, n_trials=24, n_startup_trials=8)
    log = SearcherDriver(searcher, max_concurrent=1, reports=reports).run()
    assert log.finished
    phases = [c["_phase"] for c in log.configs]
    assert phases == ["score"] * 3 + ["tpe"] * 24 + ["train-best"]
    tpe = [c for c in log.configs if c["_phase"] == "tpe"]
    assert all({c["n_layers"], c["width"]} == {1, 64} for c in tpe)
    values = [objective(c) for c in tpe]
    best_tpe = tpe[values.index(min(values))]
    assert hyper(log.configs[-1]) == hyper(best_tpe)
    assert searcher.best_settings == {k: best_tpe[k] for k in ("learning_rate", "batch_size")}
    # TPE after the random start improves on it (seeded, so this is a fixed outcome)
    assert min(values[8:]) < min(values[:8])
    assert min(values) < 1.3


def test_same_seed_same_study() -> None:
    first = SearcherDriver(make(chunk_size=9, n_trials=6, n_startup_trials=2), reports=reports).run()
    second = SearcherDriver(make(chunk_size=9, n_trials=6, n_startup_trials=2), reports=reports).run()
    assert [canonical(c) for c in first.configs] == [canonical(c) for c in second.configs]


def test_at_most_max_concurrent_tpe_trials_at_once() -> None:
    searcher = make(chunk_size=9, n_trials=5, max_concurrent=2)
    score = searcher.suggest("s")
    searcher.on_trial_complete("s", reports(score)[0])
    a, b = searcher.suggest("a"), searcher.suggest("b")
    assert a["_phase"] == b["_phase"] == "tpe"
    assert searcher.suggest("c") is None
    searcher.on_trial_complete("a", reports(a)[0])
    assert searcher.suggest("c")["_phase"] == "tpe"


def test_failed_tpe_trials_are_told_as_failed_and_never_best() -> None:
    def flaky(config: dict[str, Any]) -> list[dict[str, Any]]:
        if config["_phase"] == "tpe" and config["batch_size"] == 32:
            return [{"status": "failed", "reason": "diverged", METRIC: 0.0}]
        return reports(config)

    searcher = make(chunk_size=9, n_trials=12, n_startup_trials=4)
    log = SearcherDriver(searcher, reports=flaky).run()
    assert any(c["_phase"] == "tpe" and c["batch_size"] == 32 for c in log.configs)
    assert searcher.best_settings["batch_size"] != 32
    states = [t.state for t in searcher.study.trials]
    assert optuna.trial.TrialState.FAIL in states
    assert optuna.trial.TrialState.RUNNING not in states


def test_restore_with_tpe_trials_running_continues_the_same_study(tmp_path) -> None:
    def fresh() -> Any:
        return make(chunk_size=9, n_trials=10, n_startup_trials=3, max_concurrent=3)

    full = SearcherDriver(fresh(), max_concurrent=3, reports=reports).run()
    first = SearcherDriver(fresh(), max_concurrent=3, reports=reports)
    first.run(stop_after=7)
    assert len(first.pending) >= 2 and all(c["_phase"] == "tpe" for _, c in first.pending)
    first.searcher.save(str(tmp_path / "state.pkl"))
    restored = fresh()
    restored.restore(str(tmp_path / "state.pkl"))
    log = first.handover(restored).run()
    assert [canonical(c) for c in log.configs] == [canonical(c) for c in full.configs]
    assert len(restored.study.trials) == 10


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="has none"):
        make({"n_layers": [1, 2], "width": [8, 16]})
    with pytest.raises(ConfigError, match="needs 11 trials"):
        make(chunk_size=9, n_trials=9, max_trials=10)
    with pytest.raises(ConfigError, match="no architecture hyperparameter"):
        make({"learning_rate": [1e-3, 1e-2]})


# -- end to end: the real runner, trainable and data on a local Ray -----------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_end_to_end_on_the_small_dataset(ray_local: Any, small_store: Path, tmp_path: Path) -> None:
    from hpsearch.api import Experiment

    experiment = Experiment.from_dict({
        "name": "naswot-optimized-e2e",
        "dataset": {"store": str(small_store)},
        "search_space": {
            "n_layers": [1, 2],
            "learning_rate": {"type": "float", "low": 3e-3, "high": 3e-2, "log": True},
        },
        "strategy": {"name": "naswot-optimized", "options": {"n_trials": 2, "n_startup_trials": 1}},
        "fixed": {"width": 16, "max_epochs": 5, "patience": 3, "batch_size": 64},
        "naswot": {"batch_size": 32, "n_init": 2},
        "budget": {"max_concurrent": 2},
        "storage_path": str(tmp_path / "study"),
    })
    result = experiment.run()
    trials = result.trials
    assert list(trials["phase"]) == ["score", "tpe", "tpe", "train-best"]
    tpe = trials[trials["phase"] == "tpe"]
    assert tpe["n_layers"].nunique() == 1 and tpe["learning_rate"].nunique() == 2
    assert trials.iloc[-1]["n_layers"] == tpe["n_layers"].iloc[0]
    done = tpe[tpe["status"] == "completed"]
    if len(done):
        best_lr = done.loc[done["val_ldos_mse"].idxmin(), "learning_rate"]  # the default objective selects
        assert trials.iloc[-1]["learning_rate"] == pytest.approx(best_lr)
