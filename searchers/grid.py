"""Grid search: every combination of the discrete levels of the search space, once each.

Example YAML::

    strategy: {name: grid}
    search_space:
      n_layers: [1, 2]
      width: [32, 64]
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true, levels: [1.0e-4, 1.0e-3]}
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hpsearch.config.strategy import Strategy, StrategyOptions
from hpsearch.errors import ConfigError
from ._statefile import STATE_FORMAT, check_saved_by, read_state_file, write_state_file

try:  # Ray is a dependency, but keep the import of this module cheap and explicit
    from ray.tune.search import Searcher
except ImportError as exc:  # pragma: no cover - ray is a hard dependency
    raise ImportError("the grid strategy needs Ray Tune: pip install 'ray[tune]'") from exc


class GridOptions(StrategyOptions):
    """Options of the grid strategy."""

    #: run only the first `max_trials` combinations instead of refusing a grid over budget
    allow_partial: bool = Field(default=False)


class GridSearcher(Searcher):
    """Suggests the combinations of a fixed list in order, then FINISHED; its state is the index."""

    def __init__(self, configs: list[dict[str, Any]], metric: str | None = None, mode: str | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self._configs = configs
        self._next = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # The grid comes from the experiment's search space; Tune's param space holds only flags.
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._next >= len(self._configs):
            return Searcher.FINISHED
        config = dict(self._configs[self._next])
        self._next += 1
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """A grid does not learn from results."""

    def get_state(self) -> dict[str, Any]:
        """The JSON-ready payload: format, searcher class and the state (the next index)."""
        state = {"next": self._next, "n_configs": len(self._configs)}
        return {"format": STATE_FORMAT, "searcher": type(self).__name__, "state": state}

    def set_state(self, payload: dict[str, Any]) -> None:
        check_saved_by(payload, type(self).__name__)
        state = payload["state"]
        if state["n_configs"] != len(self._configs):
            raise ConfigError(
                f"saved grid had {state['n_configs']} combinations, this one has "
                f"{len(self._configs)}: the search space changed since the study was saved"
            )
        self._next = int(state["next"])

    def save(self, checkpoint_path: str) -> None:
        write_state_file(checkpoint_path, self.get_state())

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(read_state_file(checkpoint_path))


class GridStrategy(Strategy):
    """Every combination of the discrete space (categorical values, integer ranges, float levels)."""

    name = "grid"
    description = "Grid search: every combination of the discrete levels, once each."
    Options = GridOptions
    options: GridOptions

    def validate(self) -> None:
        for name in self.space.names:
            self.space.levels(name)  # ConfigError for a continuous float range without levels
        size = self.space.grid_size()
        budget = self.context.max_trials
        if budget is not None and size > budget and not self.options.allow_partial:
            raise ConfigError(
                f"the grid has {size} combinations but budget.max_trials is {budget}: raise "
                "max_trials, shrink the space, or set strategy.options.allow_partial: true"
            )

    def make_searcher(self) -> GridSearcher:
        configs = list(self.space.grid())
        return GridSearcher(configs, metric=self.context.metric, mode=self.context.mode)

    def num_samples(self) -> int:
        return self.space.grid_size()
