"""The grid strategy: every combination once, the conformance suite, and its errors."""

from __future__ import annotations

import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherConformance, drive_searcher


class TestGridConformance(SearcherConformance):
    strategy_name = "grid"
    space = {
        "n_layers": [1, 2],
        "width": {"type": "int", "low": 8, "high": 16, "step": 8},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "levels": [1e-4, 1e-2]},
    }
    fixed = {"activation": "ReLU"}
    expected_trials = 8
    max_concurrent = 2


def _grid(space: dict, max_trials: int | None = None, **options: object):
    cls = load_strategy("grid")
    return cls(SearchSpace.model_validate(space), cls.Options(**options), StrategyContext(max_trials=max_trials))


def test_every_combination_exactly_once() -> None:
    strategy = _grid({"n_layers": [1, 2, 3], "activation": ["ReLU", "Tanh"]})
    strategy.validate()
    log = drive_searcher(strategy.make_searcher())
    got = sorted((c["n_layers"], c["activation"]) for c in log.configs)
    expected = sorted((n, a) for n in (1, 2, 3) for a in ("ReLU", "Tanh"))
    assert got == expected
    assert log.finished


def test_continuous_range_without_levels_is_refused() -> None:
    strategy = _grid({"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}})
    with pytest.raises(ConfigError, match="learning_rate.*levels"):
        strategy.validate()


def test_grid_over_budget_is_refused_unless_partial() -> None:
    space = {"width": [8, 16, 32], "n_layers": [1, 2]}
    with pytest.raises(ConfigError, match="6 combinations.*max_trials is 4"):
        _grid(space, max_trials=4).validate()
    _grid(space, max_trials=4, allow_partial=True).validate()


def test_restore_into_changed_space_is_refused(tmp_path) -> None:
    first = _grid({"width": [8, 16]}).make_searcher()
    first.suggest("a")
    first.save(str(tmp_path / "s.pkl"))
    other = _grid({"width": [8, 16, 32]}).make_searcher()
    with pytest.raises(ConfigError, match="search space changed"):
        other.restore(str(tmp_path / "s.pkl"))
