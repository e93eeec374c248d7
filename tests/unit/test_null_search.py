"""The null strategy ("no search"): the conformance suite (resume included), one seeded draw of the
architecture part of the space, optimisation settings from `fixed`, a pending trial across a restore."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from ray.tune.search import Searcher

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, SearcherDriver
from hpsearch_searchers.null import null_architecture

SPACE = {
    "n_layers": [1, 2, 3, 4],
    "width": [16, 32, 64, 128],
    "activation": ["ReLU", "LeakyReLU", "Sigmoid", "Tanh"],
    "learning_rate": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
    "batch_size": [64, 256],
}
FIXED = {"learning_rate": 3e-3, "batch_size": 64, "patience": 4, "max_epochs": 30}


class TestNullConformance(SearcherConformance):
    strategy_name = "null"
    space = SPACE
    fixed = FIXED
    expected_trials = 1
    max_concurrent = 2

    def check_config(self, config: dict) -> None:
        # only the architecture is drawn: the optimisation settings come from `fixed`
        assert set(config) - {"_phase"} == {"n_layers", "width", "activation"}, config


def _searcher(seed: int, space: dict = SPACE):
    cls = load_strategy("null")
    strategy = cls(SearchSpace.model_validate(space), cls.Options(), StrategyContext(seed=seed, fixed=FIXED))
    strategy.validate()
    searcher = strategy.make_searcher()
    searcher.set_search_properties(METRIC, "min", {})
    return strategy, searcher


def test_one_trial_then_finished_and_the_seed_decides() -> None:
    strategy, searcher = _searcher(seed=3)
    assert strategy.num_samples() == 1
    config = searcher.suggest("t1")
    assert config is not None and config != Searcher.FINISHED
    assert searcher.suggest("t2") is None  # the one trial still runs: nothing more, not finished yet
    searcher.on_trial_complete("t1", {METRIC: 0.5})
    assert searcher.suggest("t3") == Searcher.FINISHED
    assert searcher.best_config == {k: v for k, v in config.items() if not k.startswith("_")}
    assert searcher.best_value == 0.5
    assert _searcher(seed=3)[1].suggest("x") == config  # the same seed draws the same network


def test_draws_cover_the_architecture_space_uniformly() -> None:
    space = SearchSpace.model_validate(SPACE)
    draws = [null_architecture(space, seed) for seed in range(2000)]
    assert all(set(d) == {"n_layers", "width", "activation"} for d in draws)
    for name, levels in (("n_layers", [1, 2, 3, 4]), ("width", [16, 32, 64, 128])):
        counts = Counter(d[name] for d in draws)
        assert set(counts) == set(levels)
        assert all(c / len(draws) == pytest.approx(0.25, abs=0.04) for c in counts.values()), (name, counts)
    assert len({tuple(sorted(d.items())) for d in draws}) == 64  # every network of the space is drawn


def test_a_pending_trial_completes_into_the_restored_state(tmp_path: Path) -> None:
    _, first = _searcher(seed=5)
    config = first.suggest("t1")
    first.save(str(tmp_path / "state.json"))
    _, restored = _searcher(seed=5)
    restored.restore(str(tmp_path / "state.json"))
    assert restored.suggest("t2") is None  # Tune runs t1 again under its own id: no second draw
    restored.on_trial_complete("t1", {METRIC: 1.5})
    assert restored.finished and restored.suggest("t3") == Searcher.FINISHED
    assert restored.history == [{"phase": "null", "config": config, "value": 1.5}]
    _, other = _searcher(seed=6)
    with pytest.raises(ConfigError, match="seed changed"):
        other.restore(str(tmp_path / "state.json"))


def test_a_failed_trial_finishes_without_a_winner() -> None:
    _, searcher = _searcher(seed=0)
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", error=True)
    assert searcher.suggest("t2") == Searcher.FINISHED and searcher.best_config is None


def test_a_space_without_architecture_is_refused() -> None:
    with pytest.raises(ConfigError, match="no architecture hyperparameter"):
        _searcher(seed=0, space={"learning_rate": [1e-3, 1e-2]})


def test_driver_runs_one_training_config() -> None:
    _, searcher = _searcher(seed=1)
    log = SearcherDriver(searcher, max_concurrent=2, limit=1).run()
    assert len(log.configs) == 1 and log.configs[0].get("_kind", "train") == "train"
