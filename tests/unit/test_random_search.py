"""Random search: the conformance suite (resume included), the distributions it draws from, and
its end in a discrete space."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, SearcherDriver, canonical
from hpsearch_searchers.random_search import draw


class TestRandomConformance(SearcherConformance):
    strategy_name = "random"
    space = {
        "n_layers": {"type": "int", "low": 1, "high": 4},
        "width": [8, 16, 32],
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    }
    fixed = {"activation": "ReLU"}
    max_trials = 10
    max_concurrent = 2
    expected_trials = 10


class TestRandomWithAshaConformance(TestRandomConformance):
    """Random search under ASHA in real Tune: trials stopped at epoch 1 still complete into the searcher."""

    scheduler_name = "asha"
    scheduler_options = {"grace_period": 1, "reduction_factor": 2, "max_t": 2}


def _strategy(space: dict, max_trials: int | None = None, seed: int = 0, **options: object):
    cls = load_strategy("random")
    strategy = cls(SearchSpace.model_validate(space), cls.Options(**options),
                   StrategyContext(seed=seed, max_trials=max_trials))
    strategy.validate()
    return strategy


def test_draws_follow_the_declared_distributions() -> None:
    space = SearchSpace.model_validate({
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "weight_decay": {"type": "float", "low": 0.0, "high": 1.0},
        "width": {"type": "int", "low": 8, "high": 64, "step": 8},
        "activation": ["ReLU", "Tanh", "Sigmoid", "LeakyReLU"],
    })
    rng = random.Random(3)
    points = [draw(space, rng) for _ in range(4000)]
    below = sum(p["learning_rate"] < 1e-3 for p in points) / len(points)
    assert below == pytest.approx(0.5, abs=0.03)  # log-uniform: the geometric midpoint halves it
    assert sum(p["weight_decay"] < 0.25 for p in points) / len(points) == pytest.approx(0.25, abs=0.03)
    assert {p["width"] for p in points} == set(range(8, 65, 8))
    counts = {a: sum(p["activation"] == a for p in points) for a in ("ReLU", "Tanh", "Sigmoid", "LeakyReLU")}
    assert all(c / len(points) == pytest.approx(0.25, abs=0.03) for c in counts.values())
    assert all(1e-4 <= p["learning_rate"] <= 1e-2 for p in points)


def test_log_integer_range_covers_every_integer_with_log_weights() -> None:
    space = SearchSpace.model_validate({"patience": {"type": "int", "low": 1, "high": 100, "log": True}})
    rng = random.Random(0)
    values = [draw(space, rng)["patience"] for _ in range(5000)]
    assert min(values) == 1 and max(values) >= 90
    # P(value <= 9) = log(9.5/0.5) / log(100.5/0.5), about 0.556
    assert sum(v <= 9 for v in values) / len(values) == pytest.approx(math.log(19) / math.log(201), abs=0.03)


def test_a_discrete_space_finishes_after_every_point_once() -> None:
    strategy = _strategy({"width": [8, 16, 32], "n_layers": [1, 2]})
    log = SearcherDriver(strategy.make_searcher(), max_concurrent=2).run()
    assert log.finished and len(log.configs) == 6
    assert len({canonical(c) for c in log.configs}) == 6


def test_seed_changes_the_draws_and_budget_is_required_for_ranges(tmp_path: Path) -> None:
    space = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    first = SearcherDriver(_strategy(space, max_trials=5, seed=1).make_searcher()).run().configs
    second = SearcherDriver(_strategy(space, max_trials=5, seed=2).make_searcher()).run().configs
    assert len(first) == 5 and first != second
    with pytest.raises(ConfigError, match="needs a budget.*max_trials"):
        _strategy(space)
    searcher = _strategy(space, max_trials=5, seed=1).make_searcher()
    searcher.suggest("a")
    searcher.save(str(tmp_path / "s.pkl"))
    with pytest.raises(ConfigError, match="seed changed"):
        _strategy(space, max_trials=5, seed=2).make_searcher().restore(str(tmp_path / "s.pkl"))
