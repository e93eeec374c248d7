"""The typed searcher state: JSON files (no pickle), refused restores, the shared best helper."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from hpsearch.config.registry import load_strategy
from hpsearch.config.space import SearchSpace
from hpsearch.config.strategy import METRIC, StrategyContext
from hpsearch.errors import ConfigError
from hpsearch.testing import SearcherDriver
from hpsearch_searchers.base import STATE_FORMAT, Record, best_from_history

SPACE = {"width": [8, 16], "n_layers": [1, 2], "activation": ["ReLU", "Tanh"]}


def _searcher(name: str, space: dict | None = None, seed: int = 0):
    cls = load_strategy(name)
    strategy = cls(SearchSpace.model_validate(space or SPACE), cls.Options(), StrategyContext(seed=seed, max_trials=8))
    searcher = strategy.make_searcher()
    searcher.set_search_properties(METRIC, "min", {})
    return searcher


@pytest.mark.parametrize("name", ["oat", "direct", "naswot", "random", "grid", "tpe"])
def test_state_file_is_versioned_json_naming_its_searcher(name: str, tmp_path: Path) -> None:
    searcher = _searcher(name)
    SearcherDriver(searcher, max_concurrent=2).run(stop_after=3)
    searcher.save(str(tmp_path / "state"))
    payload = json.loads((tmp_path / "state").read_text())
    assert payload["format"] == STATE_FORMAT
    assert payload["searcher"] == type(searcher).__name__


def test_oat_phase_and_pending_trials_read_as_words(tmp_path: Path) -> None:
    searcher = _searcher("oat")
    driver = SearcherDriver(searcher, max_concurrent=8)
    driver.run(stop_after=5)  # every row, then the optimum, still running
    searcher.save(str(tmp_path / "state"))
    state = json.loads((tmp_path / "state").read_text())["state"]
    assert state["phase"] == "optimum-running"
    assert {"kind": "optimum"} in state["pending"].values()
    restored = _searcher("oat")
    restored.restore(str(tmp_path / "state"))
    assert restored.state == searcher.state


@pytest.mark.parametrize(("name", "other"), [("oat", "direct"), ("tpe", "random")])
def test_restore_into_another_strategy_is_refused(name: str, other: str, tmp_path: Path) -> None:
    _searcher(name).save(str(tmp_path / "state"))
    with pytest.raises(ConfigError, match="belongs to"):
        _searcher(other).restore(str(tmp_path / "state"))


@pytest.mark.parametrize("name", ["oat", "tpe"])
def test_restore_into_a_changed_experiment_is_refused(name: str, tmp_path: Path) -> None:
    _searcher(name).save(str(tmp_path / "state"))
    with pytest.raises(ConfigError, match="changed since the study was saved"):
        _searcher(name, seed=1).restore(str(tmp_path / "state"))


def test_an_old_pickled_state_is_refused_with_advice(tmp_path: Path) -> None:
    (tmp_path / "state").write_bytes(pickle.dumps({"format": 1, "searcher": "OATSearcher", "state": {}}))
    with pytest.raises(ConfigError, match="start a new study"):
        _searcher("oat").restore(str(tmp_path / "state"))


def test_best_from_history_tiers_and_repeats() -> None:
    history = [Record("a", {"x": 1, "_seed": 0}, 3.0), Record("a", {"x": 1, "_seed": 1}, 1.0),
               Record("a", {"x": 2}, 2.5), Record("b", {"x": 3}, 9.0), Record("b", {"x": 4}, None)]
    key = float
    best = best_from_history(history, key)
    assert (best.config, best.value) == ({"x": 1}, 1.0)
    mean = best_from_history(history, key, average_repeats=True)
    assert (mean.config, mean.value) == ({"x": 1}, 2.0)
    tiered = best_from_history(history, key, tiers=(lambda r: r.phase == "b", lambda r: True))
    assert (tiered.config, tiered.value) == ({"x": 3}, 9.0)
    assert best_from_history([Record("a", {"x": 1}, None)], key) is None
